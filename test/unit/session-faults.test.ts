/**
 * Checkpoint and restore modes through the run lifecycle (modes/session.ts) against the fake hosts of
 * fake-world.ts: connect, lock, settle, journal, work, settlement, report, release. As in
 * migrate.test.ts, the happy path lists every command a run issues; then each kind of fault hits
 * each of those commands in turn, and the end state must keep the mode's promises:
 *   - the run reports exactly once, with a status, and fails the step unless it succeeded;
 *   - a reachable source runs its container, neither paused nor stopped (leave-running: true);
 *   - succeeded means a complete checkpoint in the store: its manifest lists every file it holds;
 *   - a checkpoint directory in the store is always complete (the rename is the commit);
 *   - unless the run failed (a rollback that could not finish, named in its error), nothing of the
 *     run is left on a reachable host: no partial checkpoint, no work files, no open journal.
 * Restore mode, from the checkpoint the happy checkpoint run stored:
 *   - succeeded means the restored container runs on the target; otherwise, unless the run failed
 *     and says what is left, a reachable target holds nothing of the run (container, image, files);
 *   - the store is never changed but for the journal: every checkpoint file is still there.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MigrationError } from '../../src/errors.js';
import { runCheckpointMode } from '../../src/modes/checkpoint.js';
import { runRestoreMode } from '../../src/modes/restore.js';
import type { Publication } from '../../src/report/publish.js';
import type { Runtime } from '../../src/runtime.js';
import type { CheckpointSettings, RestoreSettings } from '../../src/settings.js';
import {
  drive,
  FAKED,
  FakeWorld,
  type Fault,
  type FaultKind,
  type Issued,
  NAME,
  SOURCE_ID,
} from './fake-world.js';

const STORE = '/srv/store';
const CHECKPOINT = 'cp-ctr-0001';
const WORK = '/var/lib/criu-migrate/work';

function checkpointSettings(): CheckpointSettings {
  return {
    mode: 'checkpoint',
    container: NAME,
    source: { kind: 'local' },
    // Another host than the source: the store gets a connection of its own (the fake's target).
    store: { host: { kind: 'ssh', spec: { host: 'store.test', port: 22, user: 'root' } }, path: STORE },
    ssh: { knownHosts: '', insecureSkipHostKeyCheck: false },
    route: 'auto',
    sudo: false,
    checkpointName: CHECKPOINT,
    timeoutMinutes: 30,
    uploadArtifact: false,
    artifactName: 'criu-migrate',
    compression: 'auto',
    leaveRunning: true,
    retention: 3,
    networkHolder: false,
    kernelPolicy: 'same-minor',
    strict: false,
    volumePrecopy: true,
    volumeReplace: false,
    volumeUseTargetOptions: false,
  };
}

interface Run {
  world: FakeWorld;
  published: Publication[];
  failed: MigrationError[];
  log: string[];
}

interface Harness {
  world: FakeWorld;
  runtime: Runtime;
  run: Run;
}

/** A fresh world with the fault, and a runtime that records what the run reports. */
function harness(fault?: Fault): Harness {
  const cancels: (() => void)[] = [];
  const world = new FakeWorld(fault, () => {
    for (const cancel of cancels) cancel();
  });
  const run: Run = { world, published: [], failed: [], log: [] };
  const state = new Map<string, string>();
  const runtime: Runtime = {
    log: {
      info: (message) => run.log.push(message),
      warning: (message) => run.log.push(`warning: ${message}`),
      group: (_name, fn) => fn(),
    },
    saveState: (name, value) => state.set(name, value),
    getState: (name) => state.get(name) ?? '',
    // The fault table's "cancel" is the runner's cancellation, as SIGINT would deliver it.
    onCancel: (cancel) => {
      cancels.push(() => cancel('SIGINT'));
      return () => {};
    },
    env: {},
    newToken: () => '0123456789abcdef01234567',
    fail: (error) => run.failed.push(error),
  };
  return { world, runtime, run };
}

/** `sides` names the fake host each role of the mode opens. */
function sessionDeps(h: Harness, sides: Record<string, 'source' | 'target'>) {
  let now = 0;
  return {
    open: async (role: string) => h.world[sides[role] ?? 'source'],
    requireRoot: async () => {},
    clock: () => now++,
    publish: async (publication: Publication) => {
      h.run.published.push(publication);
    },
  };
}

async function runCheckpoint(fault?: Fault): Promise<Run> {
  const h = harness(fault);
  await drive(
    h.world,
    runCheckpointMode(checkpointSettings(), h.runtime, sessionDeps(h, { source: 'source', store: 'target' })),
  );
  return h.run;
}

/** The run reported once, with a status, and failed the step unless it succeeded. */
function reportProblems(published: Publication[], failed: MigrationError[]): string[] {
  if (published.length !== 1) return [`reported ${published.length} times`];
  const status = published[0]?.metadata.run.status;
  const problems: string[] = [];
  if ((status === 'succeeded') !== (failed.length === 0))
    problems.push(`status ${status} with ${failed.length} failure(s)`);
  if (!['succeeded', 'refused', 'rolled-back', 'failed'].includes(status ?? ''))
    problems.push(`status ${status}`);
  return problems;
}

const finalDir = (series: string) => `${STORE}/${NAME}/${series}/${CHECKPOINT}`;

/** Where a run ended up, in words: empty when the end state keeps every promise. */
function endStateProblems({ world, published, failed, log }: Run): string[] {
  const problems: string[] = [];
  const source = world.source.machine;
  const store = world.target.machine;
  const reported = reportProblems(published, failed);
  if (reported.length > 0) return reported;
  const status = published[0]?.metadata.run.status;
  const error = failed[0]?.describe() ?? '';

  const container = source.container(SOURCE_ID);
  if (source.connected && container?.status !== 'running')
    problems.push(`a reachable source's container is ${container?.status ?? 'gone'}`);

  const checkpoints = [...store.paths].filter((p) => p.endsWith(`/${CHECKPOINT}`) && !p.includes('.partial'));
  for (const dir of checkpoints) {
    if (!store.contents.has(`${dir}/manifest.json`))
      problems.push(`${dir} is in the store without a manifest`);
  }
  if (status === 'succeeded') {
    const series = published[0]?.outputs?.series;
    const manifest = store.contents.get(`${finalDir(String(series))}/manifest.json`);
    if (!manifest) problems.push('succeeded without a checkpoint in the store');
    else {
      const listed = (JSON.parse(manifest) as { files: { path: string }[] }).files.map((f) => f.path).sort();
      const dir = finalDir(String(series));
      const all = store.under(dir);
      const held = all
        .filter((p) => !all.some((q) => q.startsWith(`${p}/`)))
        .map((p) => p.slice(dir.length + 1))
        .filter((p) => p !== 'manifest.json')
        .sort();
      if (JSON.stringify(listed) !== JSON.stringify(held))
        problems.push(`the manifest lists ${listed.join(', ')} but the checkpoint holds ${held.join(', ')}`);
    }
  }
  if (status !== 'failed') {
    if (store.connected) {
      const partial = [...store.paths].filter((p) => p.includes('.partial'));
      if (partial.length > 0) problems.push(`left in the store: ${partial.join(', ')}`);
    }
    if (source.connected) {
      // Past the commit point a leftover is warned about (the journal stays open for the next run).
      const named =
        status === 'succeeded' && log.some((line) => line.startsWith('warning: left to clean up'));
      if (source.under(WORK).length > 0 && !named)
        problems.push(`left on the source: ${source.under(WORK).join(', ')}`);
      const journal = source.journal();
      if (journal && journal.status === 'running') problems.push('the source journal is still open');
    }
  } else if (!/rollback did not finish|could not|left/i.test(error)) {
    problems.push(`failed without saying what is left: ${error}`);
  }
  return problems;
}

function describeRun(run: Run): string {
  const c = run.world.source.machine.container(SOURCE_ID);
  return [
    `status ${run.published[0]?.metadata.run.status}, source container ${c?.status ?? 'gone'}`,
    `reachable: source ${run.world.source.machine.connected}, store ${run.world.target.machine.connected}`,
    `error: ${run.failed[0]?.describe() ?? 'none'}`,
    ...run.log.slice(-12),
  ].join('\n');
}

vi.useFakeTimers({ toFake: [...FAKED] });
const happy: Issued[] = await runCheckpoint().then(
  (run) => run.world.issued,
  () => [],
);
vi.useRealTimers();

beforeEach(() => {
  vi.useFakeTimers({ toFake: [...FAKED] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('checkpoint mode on fake hosts, through the run lifecycle', () => {
  it('writes a complete checkpoint, resumes the container and leaves nothing else', async () => {
    const run = await runCheckpoint();
    expect(run.failed.map((e) => e.describe())).toEqual([]);
    expect(run.published[0]?.metadata.run.status).toBe('succeeded');
    expect(run.world.unknown).toEqual([]);
    expect(endStateProblems(run), describeRun(run)).toEqual([]);
    // Closed and archived: the history keeps it as done.
    const source = run.world.source.machine;
    expect(source.journal()).toBeUndefined();
    const archived = source.contents.get(
      `/var/lib/criu-migrate/containers/${NAME}/history/${CHECKPOINT}.json`,
    );
    expect(JSON.parse(archived ?? '{}').status).toBe('done');
    expect(happy.length).toBeGreaterThan(30);
  });
});

const KINDS: { kind: FaultKind; what: string }[] = [
  { kind: 'fail', what: 'exits 1 ("injected") and does nothing' },
  { kind: 'drop', what: 'loses its SSH connection before the command, for good' },
  { kind: 'drop-after', what: 'runs the command, then loses its SSH connection for good' },
  { kind: 'timeout', what: 'runs the command, but reports it timed out' },
  { kind: 'cancel', what: 'is cancelled as the command starts' },
];

for (const { kind, what } of KINDS) {
  describe(`checkpoint, ${kind}: at each command of the happy path in turn, a host ${what}`, () => {
    for (const issued of happy) {
      it(`#${issued.index} ${issued.host} ${issued.command.split('\n')[0]?.slice(0, 80)}`, async () => {
        const run = await runCheckpoint({ index: issued.index, kind });
        expect(run.world.issued[issued.index]?.command, 'the run diverged before the fault').toBe(
          issued.command,
        );
        expect(endStateProblems(run), describeRun(run)).toEqual([]);
      });
    }
  });
}

// --- restore mode ------------------------------------------------------------------------------

const RESTORE = 'cm-restore-0001';

function restoreSettings(): RestoreSettings {
  const { leaveRunning: _leave, retention: _keep, ...common } = checkpointSettings();
  return {
    ...common,
    mode: 'restore',
    target: { kind: 'local' },
    checkpointName: RESTORE,
    verifyTimeoutSeconds: 30,
    verifyStableSeconds: 0,
    verifyShowLogs: false,
    replace: false,
  };
}

/** The store as the happy checkpoint run left it: every restore starts from a copy of it. */
vi.useFakeTimers({ toFake: [...FAKED] });
const stored = harness();
await drive(
  stored.world,
  runCheckpointMode(
    checkpointSettings(),
    stored.runtime,
    sessionDeps(stored, { source: 'source', store: 'target' }),
  ),
).catch(() => undefined);
vi.useRealTimers();
const STORED_FILES = [...stored.world.target.machine.contents.keys()].filter((p) =>
  p.startsWith(`${STORE}/`),
);

async function runRestore(fault?: Fault): Promise<Run> {
  const h = harness(fault);
  h.world.seedStore(stored.world.target.machine);
  await drive(
    h.world,
    runRestoreMode(restoreSettings(), h.runtime, sessionDeps(h, { store: 'source', target: 'target' })),
  );
  return h.run;
}

function restoreProblems({ world, published, failed }: Run): string[] {
  const problems: string[] = [];
  const store = world.source.machine;
  const target = world.target.machine;
  const reported = reportProblems(published, failed);
  if (reported.length > 0) return reported;
  const status = published[0]?.metadata.run.status;
  const error = failed[0]?.describe() ?? '';
  const gone = STORED_FILES.filter((path) => !store.contents.has(path));
  if (gone.length > 0) problems.push(`the store lost ${gone.join(', ')}`);
  const restored = target.container(NAME);
  if (status === 'succeeded' && restored?.status !== 'running')
    problems.push(`succeeded, but the target's container is ${restored?.status ?? 'gone'}`);
  if (status === 'failed') {
    if (!/rollback did not finish|could not|left/i.test(error))
      problems.push(`failed without saying what is left: ${error}`);
  } else if (status !== 'succeeded' && target.connected) {
    if (restored) problems.push(`left on the target: container ${restored.name} (${restored.status})`);
    if (target.images.size > 0)
      problems.push(`left on the target: image ${[...target.images.keys()].join(', ')}`);
    if (target.leftovers().length > 0) problems.push(`left on the target: ${target.leftovers().join(', ')}`);
  }
  if (status !== 'failed') {
    for (const machine of [store, target]) {
      const journal = machine.connected ? machine.journal() : undefined;
      if (journal?.status === 'running') problems.push(`the ${machine.role}'s journal is still open`);
    }
  }
  return problems;
}

vi.useFakeTimers({ toFake: [...FAKED] });
const restoreHappy: Issued[] = await runRestore().then(
  (run) => run.world.issued,
  () => [],
);
vi.useRealTimers();

describe('restore mode on fake hosts, through the run lifecycle', () => {
  it('restores the stored checkpoint on the target and leaves the store as it was', async () => {
    const run = await runRestore();
    expect(run.failed.map((e) => e.describe())).toEqual([]);
    expect(run.published[0]?.metadata.run.status).toBe('succeeded');
    expect(run.world.unknown).toEqual([]);
    expect(restoreProblems(run), describeRun(run)).toEqual([]);
    expect(STORED_FILES.length).toBeGreaterThan(3);
    expect(restoreHappy.length).toBeGreaterThan(30);
  });
});

for (const { kind, what } of KINDS) {
  describe(`restore, ${kind}: at each command of the happy path in turn, a host ${what}`, () => {
    for (const issued of restoreHappy) {
      it(`#${issued.index} ${issued.host} ${issued.command.split('\n')[0]?.slice(0, 80)}`, async () => {
        const run = await runRestore({ index: issued.index, kind });
        expect(run.world.issued[issued.index]?.command, 'the run diverged before the fault').toBe(
          issued.command,
        );
        expect(restoreProblems(run), describeRun(run)).toEqual([]);
      });
    }
  });
}
