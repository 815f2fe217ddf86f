/**
 * migrate() end to end against two fake hosts (fake-world.ts). The happy path is run once to list
 * every command it issues; then, for each kind of fault and each of those commands in turn, a fresh
 * run has that one command go wrong, and the end state must keep the action's promises:
 *   - never two running copies; one running copy unless the run failed because the host with the
 *     frozen source is gone, or the source was kept frozen on purpose (the target unconfirmed gone);
 *   - committed means succeeded, the target runs, and a reachable source is stopped with restart "no";
 *   - before the commit: refused (nothing journaled), rolled back (source running, target container
 *     and copied image gone) or failed (the error says what the rollback left, the journal stays open);
 *   - nothing of the run left on a host that can still be reached, unless the outcome names it.
 * Failing cases here are findings about src/, kept as failing tests on purpose.
 */
import { setMaxListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DockerCli } from '../../src/engine/docker/docker-cli.js';
import { MigrationError } from '../../src/errors.js';
import { type MigrationOutcome, migrate } from '../../src/modes/migrate/migration.js';
import { PhaseTimer } from '../../src/report/timings.js';
import type { MigrateSettings, SourceAfter } from '../../src/settings.js';
import { journalPersister } from '../../src/state/guard.js';
import { isCommitted, Journal, type JournalRecord } from '../../src/state/journal.js';
import {
  drive,
  FAKED,
  FakeWorld,
  type Fault,
  type FaultKind,
  IMAGE_ID,
  type Issued,
  NAME,
  SOURCE_ID,
} from './fake-world.js';

const CHECKPOINT = 'cm-ctr-0001';
const WORK = '/var/lib/criu-migrate/work';

function settings(sourceAfter: SourceAfter): MigrateSettings {
  return {
    mode: 'migrate',
    container: NAME,
    source: { kind: 'local' },
    target: { kind: 'local' },
    ssh: { knownHosts: '', insecureSkipHostKeyCheck: false },
    sudo: false,
    checkpointName: CHECKPOINT,
    verifyTimeoutSeconds: 30,
    // One look at the restored container: the fake's state does not change by itself.
    verifyStableSeconds: 0,
    verifyShowLogs: false,
    sourceAfter,
    memory: 'eager',
    route: 'auto',
    timeoutMinutes: 30,
    uploadArtifact: false,
    artifactName: 'criu-migrate',
    kernelPolicy: 'same-minor',
    strict: false,
    compression: 'auto',
    volumePrecopy: true,
    volumeReplace: false,
    volumeUseTargetOptions: false,
    networkHolder: false,
  };
}

interface Run {
  world: FakeWorld;
  outcome: MigrationOutcome;
  journal: Journal;
  log: string[];
}

async function runMigration(
  fault?: Fault,
  sourceAfter: SourceAfter = 'stop',
  prepare?: (world: FakeWorld) => void,
): Promise<Run> {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const world = new FakeWorld(fault, () =>
    controller.abort(new MigrationError('CANCELLED', 'the run was cancelled (test)')),
  );
  prepare?.(world);
  const lines: string[] = [];
  const log = {
    info: (message: string) => lines.push(message),
    warning: (message: string) => lines.push(`warning: ${message}`),
    group: <T>(_name: string, fn: () => Promise<T>) => fn(),
  };
  const hosts = { source: world.source, target: world.target };
  const record: JournalRecord = {
    schema: 2,
    mode: 'migrate',
    container: NAME,
    checkpointName: CHECKPOINT,
    source: world.source.address,
    target: world.target.address,
    sourceAfter,
    owner: { token: 'test', pid: 1, startedAt: '2026-01-01T00:00:00.000Z' },
    status: 'running',
    entries: [],
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  const journal = new Journal(
    record,
    journalPersister(hosts, () => {}, log),
  );
  let now = 0;
  const clock = () => now++;
  const outcome = await drive(
    world,
    migrate({
      settings: settings(sourceAfter),
      ...hosts,
      log,
      timer: new PhaseTimer(clock),
      journal,
      signal: controller.signal,
      clock,
    }),
  );
  return { world, outcome, journal, log: lines };
}

/** Where a run can end up, in words: empty when the end state keeps every promise. */
function endStateProblems({ world, outcome, journal }: Run): string[] {
  const source = world.source.machine;
  const target = world.target.machine;
  const sourceCtr = source.container(SOURCE_ID);
  const targetCtr = target.container(NAME);
  const sourceRuns = sourceCtr?.status === 'running';
  const targetRuns = targetCtr?.status === 'running';
  const committed = isCommitted(journal.record);
  const said = [outcome.error?.describe() ?? '', ...outcome.leftovers].join('\n');
  const leftFrozen = /still frozen because the target container could not be confirmed gone/.test(said);
  const problems: string[] = [];

  if (sourceRuns && targetRuns) problems.push('two running copies');
  if (committed) {
    if (outcome.status !== 'succeeded') problems.push(`committed, but the status is ${outcome.status}`);
    if (!targetRuns) problems.push(`committed, but the target container is ${targetCtr?.status ?? 'gone'}`);
    const closed = outcome.leftovers.length === 0 ? 'done' : 'committed';
    if (journal.record.status !== closed) problems.push(`journal ${journal.record.status}, not ${closed}`);
    // One failed command is no reason to leave a reachable source frozen, or able to restart.
    if (source.connected && sourceCtr && (sourceCtr.status !== 'exited' || sourceCtr.restartPolicy !== 'no'))
      problems.push(
        `source ${sourceCtr.status} with restart policy ${sourceCtr.restartPolicy} after finalize`,
      );
  } else {
    if (!['refused', 'rolled-back', 'failed'].includes(outcome.status))
      problems.push(`not committed, but the status is ${outcome.status}`);
    if ((outcome.status === 'refused') !== (journal.record.entries.length === 0))
      problems.push(`status ${outcome.status} with ${journal.record.entries.length} journal entries`);
    if (!outcome.error) problems.push('not committed, and no error');
    if (!sourceRuns) {
      // Nothing can resume a source whose host is gone; the code may also keep it frozen on purpose.
      const excused = outcome.status === 'failed' && (leftFrozen || !source.connected);
      if (!excused)
        problems.push(
          `no copy runs: source ${sourceCtr?.status ?? 'gone'}, target ${targetCtr?.status ?? 'gone'}`,
        );
    }
    if (targetRuns && !leftFrozen) problems.push('the target runs, though the run was not committed');
    if (outcome.status === 'rolled-back') {
      if (targetCtr)
        problems.push(`rolled back, but the target container is still there (${targetCtr.status})`);
      if (target.images.has(IMAGE_ID))
        problems.push('rolled back, but the copied image is still on the target');
      if (journal.record.status !== 'rolled-back')
        problems.push(`journal ${journal.record.status}, not rolled-back`);
    }
    if (outcome.status === 'failed') {
      if (!/the rollback did not finish/.test(outcome.error?.message ?? ''))
        problems.push('failed, but the error does not say what the rollback left');
      if (journal.record.status !== 'running')
        problems.push(`failed, but the journal is ${journal.record.status}`);
      if (target.connected && targetCtr && !/docker rm -f/.test(said))
        problems.push('failed, the target container is still there and the error does not say so');
    }
  }
  // The journal on each host that can be reached says what happened: a later run trusts it.
  for (const machine of [source, target]) {
    if (!machine.connected) continue;
    const status = machine.journal()?.status;
    if (outcome.status === 'refused' && status !== undefined)
      problems.push(`${machine.role}: refused, but a journal`);
    if (outcome.status === 'rolled-back' && status !== 'rolled-back')
      problems.push(`${machine.role}: journal ${status}, not rolled-back`);
    if (outcome.status === 'failed' && status !== 'running')
      problems.push(`${machine.role}: journal ${status}, not left open for the next run`);
  }
  // Nothing left behind on a host that can still be reached, unless the outcome names it.
  const named = [...said.matchAll(/\/[\w./:-]+/g)].map((m) => m[0]);
  for (const machine of [source, target]) {
    if (!machine.connected) continue;
    const left = machine.leftovers();
    const roots = left.filter((path) => !left.some((other) => path.startsWith(`${other}/`)));
    for (const path of roots) {
      if (!named.some((n) => path === n || path.startsWith(`${n}/`)))
        problems.push(`${machine.role}: ${path} left behind`);
    }
  }
  return problems;
}

function describeRun(run: Run): string {
  const s = run.world.source.machine.container(SOURCE_ID);
  const t = run.world.target.machine.container(NAME);
  return [
    `status ${run.outcome.status}; journal ${run.journal.record.status}; committed ${isCommitted(run.journal.record)}`,
    `source ${s?.status ?? 'gone'} (restart ${s?.restartPolicy}), reachable ${run.world.source.machine.connected}`,
    `target ${t?.status ?? 'gone'}, reachable ${run.world.target.machine.connected}`,
    `error: ${run.outcome.error?.describe() ?? 'none'}`,
    `leftovers: ${run.outcome.leftovers.join(' | ') || 'none'}`,
  ].join('\n');
}

function expectEndState(run: Run): void {
  expect(endStateProblems(run), describeRun(run)).toEqual([]);
}

// The happy path, once, to know every command a run issues (the cases below fail each in turn).
// A happy path that throws leaves the table empty; the first test below then says why.
vi.useFakeTimers({ toFake: [...FAKED] });
const happy: Issued[] = await runMigration().then(
  (run) => run.world.issued,
  () => [],
);
vi.useRealTimers();

function label(command: Issued): string {
  if (command.journal) return `journal write (${command.journal})`;
  const first = command.command.split('\n').find((line) => /docker|runc|tar |rm -rf/.test(line));
  const text = (first ?? command.command.split('\n')[0] ?? '').replace(/[0-9a-f]{64}/g, (id) =>
    id.slice(0, 8),
  );
  return `${command.kind} ${text.length > 90 ? `${text.slice(0, 87)}...` : text}`;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: [...FAKED] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('migrate() on fake hosts', () => {
  it('moves the container: the target runs, the source is stopped for good, nothing is left', async () => {
    const run = await runMigration();
    const { world, outcome, journal } = run;
    expect(outcome.error?.describe()).toBeUndefined();
    expect(outcome.status).toBe('succeeded');
    expect(outcome.leftovers).toEqual([]);
    expect(world.unknown).toEqual([]);

    const target = world.target.machine.container(NAME);
    expect(target).toMatchObject({ status: 'running', image: IMAGE_ID });
    expect(outcome.metadata.container.targetId).toBe(target?.id);
    expect(world.source.machine.container(SOURCE_ID)).toMatchObject({
      status: 'exited',
      restartPolicy: 'no',
    });

    for (const machine of [world.source.machine, world.target.machine]) {
      expect(machine.under(WORK), machine.role).toEqual([]);
      expect(machine.leftovers(), machine.role).toEqual([]);
      expect(machine.journal()?.status, machine.role).toBe('done');
    }
    expect(journal.record.status).toBe('done');
    const kinds = journal.record.entries.map((e) => `${e.action.kind} ${e.state}`);
    expect(kinds.slice(0, 3)).toEqual(['image-copied done', 'files intended', 'target-created done']);
    // Everything the frozen window needs is written down before the pause, nothing between it and the commit.
    const paused = kinds.indexOf('source-paused done');
    expect(kinds.slice(3, paused).sort()).toEqual([
      'files intended',
      'files intended',
      'restore-copies intended',
      'restore-started done',
    ]);
    expect(kinds.slice(paused)).toEqual([
      'source-paused done',
      'committed done',
      'restart-policy done',
      'source-stopped done',
    ]);
    expect(endStateProblems(run)).toEqual([]);
    expect(outcome.metadata.checkpoint.restorePath).toBe('staged-pages');
    expect(run.log).toContain('restore path: staged pages');
    // compression: auto, both hosts have zstd: the random pages travel raw, the layer's text compressed.
    expect(outcome.metadata.checkpoint.streams.checkpoint).toMatchObject({
      codec: 'none',
      codecReason: expect.stringMatching(/sent raw/),
    });
    expect(outcome.metadata.checkpoint.streams.writableLayer).toMatchObject({ codec: 'zstd' });
    expect(journal.record.entries.map((e) => e.action)).toContainEqual({
      kind: 'restore-copies',
      marker: `${outcome.metadata.container.targetId}/cm-ctr-0001`,
      dir: '/tmp',
    });
    // While frozen the hosts run only the pause, the dump and the restore: both streams' ends
    // were spawned before the pause and only got their go lines.
    const pausedAt = happy.findIndex((c) => /^docker pause /.test(c.command));
    const frozen = happy.slice(
      pausedAt,
      happy.findIndex((c) => /\bdocker start --checkpoint /.test(c.command)) + 1,
    );
    expect(frozen.map((c) => `${c.host} ${c.kind}`)).toEqual(['source run', 'source run', 'target run']);
    expect(frozen[1]?.command).toMatch(/runc --root \S+ checkpoint --leave-running/);
    const armed = happy
      .slice(0, pausedAt)
      .filter((c) => c.kind === 'spawn' && /^IFS= read -r go \|\| exit 125\n/.test(c.command));
    expect(armed.map((c) => `${c.host} ${c.kind}`).sort()).toEqual([
      'source spawn',
      'source spawn',
      'target spawn',
      'target spawn',
    ]);
    expect(armed.every((c) => /criu-migrate-sha256/.test(c.command))).toBe(true);
    // The run went through the steps the cases below break one by one.
    const commands = happy.map((c) => c.command);
    for (const pattern of [
      /^docker pause /,
      /runc --root \S+ checkpoint --leave-running/,
      /\nexec docker start --checkpoint /,
      /^docker update --restart no /,
      /\nout=\$\(docker kill --signal KILL /,
      /journal\.json\.\$\$\.new/,
    ]) {
      expect(
        commands.some((c) => pattern.test(c)),
        String(pattern),
      ).toBe(true);
    }
  });

  it("copies every image into Docker's checkpoint directory when containerd's TMPDIR is unknown", async () => {
    const run = await runMigration(undefined, 'stop', (world) => {
      world.target.machine.containerdProbe = 'none cannot read the environment of containerd 4242\n';
    });
    expect(run.outcome.status).toBe('succeeded');
    expect(run.outcome.metadata.checkpoint).toMatchObject({
      restorePath: 'full-copy',
      restorePathReason: 'cannot read the environment of containerd 4242',
    });
    expect(run.log.join('\n')).toMatch(
      /warning: restore path: full copy \(cannot read the environment of containerd 4242\)/,
    );
    expect(run.world.issued.some((c) => c.command.includes('/staged'))).toBe(false);
    expect(endStateProblems(run)).toEqual([]);
  });

  it('removes the source container when source-after is remove', async () => {
    const run = await runMigration(undefined, 'remove');
    expect(run.outcome.status).toBe('succeeded');
    expect(run.world.source.machine.container(SOURCE_ID)).toBeUndefined();
    expect(run.world.target.machine.container(NAME)?.status).toBe('running');
    expect(endStateProblems(run)).toEqual([]);
  });

  it('runs the same commands every time (the fault cases rely on it)', async () => {
    const again = (await runMigration()).world.issued;
    expect(again.map((c) => `${c.host} ${c.command}`)).toEqual(happy.map((c) => `${c.host} ${c.command}`));
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
  describe(`${kind}: at each command of the happy path in turn, a host ${what}`, () => {
    for (const issued of happy) {
      it(`#${issued.index} ${issued.host} ${label(issued)}`, async () => {
        const run = await runMigration({ index: issued.index, kind });
        expect(run.world.issued[issued.index]?.command, 'the run diverged before the fault').toBe(
          issued.command,
        );
        expectEndState(run);
      });
    }
  });
}

describe('found by the fault table', () => {
  // After a first attempt that fails without "no such container", inspectContainer runs the command
  // again to get a proper error; when that second attempt succeeds it still parses the first
  // attempt's (empty) output and throws "did not print JSON". In finalize this leaves a reachable
  // source frozen with its restart policy (fail #84 above).
  it('DockerCli.inspectContainer returns the container when only its first attempt fails', async () => {
    const world = new FakeWorld({ index: 0, kind: 'fail' });
    const inspected = await new DockerCli(world.source).inspectContainer(NAME, 'test');
    expect(inspected?.Id).toBe(SOURCE_ID);
  });
});
