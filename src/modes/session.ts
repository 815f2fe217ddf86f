import { DockerCli } from '../engine/docker/docker-cli.js';
import { asMigrationError, type ErrorCode, MigrationError } from '../errors.js';
import { bindSignal } from '../host/abortable.js';
import { describeHost, type Host } from '../host/host.js';
import { openHost, requireRoot } from '../host/host-factory.js';
import { formatHostSpec } from '../host/host-spec.js';
import { reconnecting } from '../host/reconnecting.js';
import type { RunContext } from '../phases/context.js';
import {
  METADATA_SCHEMA_VERSION,
  type MigrationMetadata,
  metadataError,
  type ResumedRun,
  type RunStatus,
  type TimingFacts,
} from '../report/metadata.js';
import { criuNotes, type Publication, publish } from '../report/publish.js';
import { PhaseTimer } from '../report/timings.js';
import { type Runtime, SAVED } from '../runtime.js';
import { describeLocation, type HostLocation } from '../settings.js';
import { containerKey, journalPersister, lockContainer, runOwner, settleUnfinished } from '../state/guard.js';
import { Journal, type JournalRecord, type RunOwner } from '../state/journal.js';
import type { RecoveryHosts } from '../state/recovery.js';
import { failureOf, settleRun, startRunControl } from './run-control.js';
import { type JournalledSettings, type RunHosts, runHostsOf, sameLocation } from './run-hosts.js';

/** Ordinary commands on a host get this long unless they say otherwise. */
export const COMMAND_TIMEOUT_MS = 120_000;

/** What a run stands on besides its settings; tests pass fake hosts here instead of mocking modules. */
export interface SessionDeps {
  runtime: Runtime;
  /** Opens a host of the run (default: over SSH, or the runner itself, as the location says). */
  open?: (role: string, location: HostLocation) => Promise<Host>;
  /** Refuses a login that is not root (default: requireRoot of host-factory.ts). */
  requireRoot?: (host: Host, location: HostLocation) => Promise<void>;
  clock?: () => number;
  /** Publishes the run's outputs, summary and metadata (default: publish of report/publish.ts). */
  publish?: (publication: Publication) => Promise<void>;
}

/** A run of a mode, from the lock on: what its work is handed. */
export interface Session<S extends JournalledSettings> {
  settings: S;
  /** The lock and journal key: the container's name on the host that knows it. */
  key: string;
  /** The hosts as opened, not bound to the run's signal. */
  opened: { source: Host; target: Host };
  /** The same hosts for the journal, locks and recovery: reconnecting when a connection drops. */
  durable: RecoveryHosts;
  owner: RunOwner;
  journal: Journal;
  /** Hosts bound to the run's signal, its Docker, log, journal and timer. */
  ctx: RunContext<S>;
  timer: PhaseTimer;
  signal: AbortSignal;
  /** When the run started (clock reading), connecting included. */
  startedAt: number;
  /** An earlier run of the same container this run settled first. */
  resumed?: ResumedRun;
  /** Runs when the run closes, before its locks are released (a series lock, say). */
  defer(release: () => Promise<void>): void;
}

/** How a run ended, for the mode's report. */
export interface RunEnd<R> {
  status: RunStatus;
  failure?: MigrationError;
  /** What the work returned, when it returned. */
  result?: R;
  /** What the settlement could not do. */
  problems: string[];
  /** The hosts' addresses, or the inputs' names for them when connecting failed. */
  addresses: { source: string; target: string };
  resumed?: ResumedRun;
  started: Date;
  durationMs: number;
  timer: PhaseTimer;
}

/** What a mode reports of a run: published as outputs, summary, metadata.json and artifact. */
export interface Report {
  metadata: MigrationMetadata;
  outputs: Record<string, string | number | undefined>;
  notes?: Publication['notes'];
}

/**
 * The metadata every mode's report starts from: the run, its hosts, its timings, its error and the
 * earlier run it settled; the mode adds its container and checkpoint facts and anything else.
 */
export function runMetadata(
  mode: JournalledSettings['mode'],
  end: RunEnd<unknown>,
  facts: Pick<MigrationMetadata, 'container' | 'checkpoint'> &
    Partial<Omit<MigrationMetadata, 'timings'>> & { timings?: Partial<TimingFacts> },
): MigrationMetadata {
  const { timings, ...rest } = facts;
  return {
    schemaVersion: METADATA_SCHEMA_VERSION,
    run: {
      mode,
      status: end.status,
      startedAt: end.started.toISOString(),
      finishedAt: new Date().toISOString(),
    },
    hosts: { source: { address: end.addresses.source }, target: { address: end.addresses.target } },
    timings: { phasesMs: end.timer.toRecord(), durationMs: end.durationMs, ...timings },
    error: end.failure ? metadataError(end.failure) : undefined,
    resumed: end.resumed,
    ...rest,
  };
}

/** How the work and the journal's settlement ended. */
export type Settled<R> = Pick<RunEnd<R>, 'status' | 'failure' | 'result' | 'problems'>;

/** What a mode brings to the lifecycle: everything else is the same for every mode. */
export interface ModeRun<S extends JournalledSettings, R> {
  settings: S;
  /** The lock and journal key (default: the container's name on the side RunHosts keys on). */
  key?: (opened: { source: Host; target: Host }) => Promise<string>;
  /** The journal record's fields that differ by mode. */
  record: Pick<JournalRecord, 'sourceAfter'> & Partial<Pick<JournalRecord, 'retireSource' | 'unitCommit'>>;
  /** The code, step and remedy of a failure of the work that carries none of its own. */
  failure: { step: string; code: ErrorCode; remedy: string };
  /**
   * Migrate mode settles its own journal (its rollback and retiring the source are phases of
   * its own): it returns how it ended, and the session does not settle again.
   */
  settlesItself?: (
    result: R,
    session: Session<S>,
  ) => Promise<{ status: RunStatus; failure?: MigrationError; problems: string[] }>;
  /** True when an earlier run, rolled forward here, already did this run's job. */
  doneByEarlier?: (resumed: ResumedRun) => boolean;
  work(session: Session<S>): Promise<R>;
  /** After the journal is settled: may change how the run ended (drill's verdict) or do more (retention). */
  afterSettle?(
    session: Session<S>,
    settled: Settled<R>,
  ): Promise<Partial<Pick<Settled<R>, 'status' | 'failure'>>>;
  /** The run's metadata, outputs and notes; the session publishes them, then fails the step or logs `success`. */
  report(end: RunEnd<R>): Report;
  success(end: RunEnd<R>): string;
}

/**
 * One run of a mode that changes hosts, from connect to close: connect, require root, reopen
 * dropped connections for the journal and locks, take the lock, settle an earlier run, build the
 * journal and context, run the work under the run's timeout and cancellation, settle the journal
 * (roll forward past the commit point, else back), report on every path, release and close.
 */
export async function runSession<S extends JournalledSettings, R>(
  mode: ModeRun<S, R>,
  deps: SessionDeps,
): Promise<void> {
  const { settings } = mode;
  const { runtime } = deps;
  const { log } = runtime;
  const clock = deps.clock ?? (() => performance.now());
  const started = new Date();
  const startedAt = clock();
  const timer = new PhaseTimer(clock);
  const plan = runHostsOf(settings);
  const control = startRunControl(settings.timeoutMinutes, runtime);
  const closer = new SessionCloser();
  const addresses = {
    source: describeLocation(plan.source.location),
    target: describeLocation(plan.target.location),
  };
  let end: Omit<RunEnd<R>, 'durationMs'> = { status: 'succeeded', problems: [], addresses, started, timer };
  try {
    const begun = await beginSession(mode, deps, {
      signal: control.signal,
      timer,
      clock,
      started,
      startedAt,
      closer,
      addresses,
    });
    if (begun.resumed) end.resumed = begun.resumed;
    if (begun.resumed && mode.doneByEarlier?.(begun.resumed)) {
      log.info(`finished the earlier run ${begun.resumed.checkpointName}: ${begun.resumed.done.join('; ')}`);
      end.status = 'resumed';
    } else {
      end = { ...end, ...(await workAndSettle(mode, begun.session, plan)) };
    }
  } catch (error) {
    const failure = asMigrationError(error, 'COMMAND_FAILED');
    log.warning(failure.describe());
    // Before its work began this run changed nothing (an earlier run it could not settle says why).
    end = { ...end, status: 'refused', failure };
  } finally {
    control.close();
  }
  try {
    timer.endAll();
    const finished: RunEnd<R> = { ...end, durationMs: Math.round(clock() - startedAt) };
    const report = mode.report(finished);
    await (deps.publish ?? publish)({
      ...settings,
      metadata: report.metadata,
      outputs: report.outputs,
      notes: report.notes ?? criuNotes(finished.failure),
      env: runtime.env,
      log,
    });
    if (finished.failure) runtime.fail(finished.failure);
    else log.info(mode.success(finished));
  } finally {
    await closer.close();
  }
}

/** What a run holds until it closes: work to release first (a series lock), its locks, its connections. */
export class SessionCloser {
  readonly hosts = new Set<Host>();
  readonly deferred: (() => Promise<void>)[] = [];
  release?: () => Promise<void>;

  async close(): Promise<void> {
    for (const fn of this.deferred) await fn().catch(() => {});
    await this.release?.().catch(() => {});
    await Promise.allSettled([...this.hosts].map((host) => host.close()));
  }
}

/**
 * The start of a run, up to its work: connect, require root, reconnecting hosts, the lock under
 * the container's name, an earlier run of the container settled, the journal and context. What
 * it opens goes to `run.closer`, which the caller closes whatever happens. A compose unit starts
 * each member's run with it.
 */
export async function beginSession<S extends JournalledSettings>(
  mode: Pick<ModeRun<S, unknown>, 'settings' | 'key' | 'record'>,
  deps: SessionDeps,
  run: {
    signal: AbortSignal;
    timer: PhaseTimer;
    clock: () => number;
    started: Date;
    startedAt: number;
    closer: SessionCloser;
    /** Filled in with the hosts' addresses once connected. */
    addresses?: { source: string; target: string };
  },
): Promise<{ session: Session<S>; resumed?: ResumedRun }> {
  const { settings } = mode;
  const { runtime } = deps;
  const { log } = runtime;
  const { closer, timer } = run;
  const plan = runHostsOf(settings);
  const warn = (message: string): void => log.warning(message);
  const open =
    deps.open ?? ((role, location) => openHost(role, location, settings.ssh, settings.sudo, { warn }));
  const mustBeRoot = deps.requireRoot ?? ((host, location) => requireRoot(host, location, settings.sudo));
  const opened = await timer.time('connect', () => connect(plan, open, settings, log));
  for (const host of [opened.source, opened.target]) closer.hosts.add(host);
  if (run.addresses) {
    run.addresses.source = opened.source.address;
    run.addresses.target = opened.target.address;
  }
  for (const side of plan.root) await mustBeRoot(opened[side], plan[side].location);
  // For the journal, the lock and recovery: leaving a rollback half done is worse than a wait.
  const source = reconnecting(opened.source, () => open(plan.source.role, plan.source.location));
  const durable: RecoveryHosts = {
    source,
    target:
      opened.target === opened.source
        ? source
        : reconnecting(opened.target, () => open(plan.target.role, plan.target.location)),
  };
  for (const host of [durable.source, durable.target]) closer.hosts.add(host);
  const owner = runOwner(runtime.env, run.started, runtime.newToken());
  const key = mode.key
    ? await mode.key(opened)
    : await containerKey(durable[plan.keyedOn], settings.container);
  runtime.saveState(SAVED.container, key);
  const locks = await lockContainer(
    plan.lock.map((side) => durable[side]),
    key,
    owner,
    log,
  );
  closer.release = () => locks.release();
  const resumed = await settleUnfinished(durable, key, log, undefined, plan.journal);
  const session = startSession(mode, {
    settings,
    key,
    opened,
    durable,
    owner,
    timer,
    clock: run.clock,
    runtime,
    plan,
    signal: run.signal,
    startedAt: run.startedAt,
    defer: (fn) => closer.deferred.push(fn),
    ...(resumed ? { resumed } : {}),
  });
  return { session, ...(resumed ? { resumed } : {}) };
}

/** Opens both sides in parallel (one connection when the mode shares a same host); a failure closes the other. */
async function connect(
  plan: RunHosts,
  open: (role: string, location: HostLocation) => Promise<Host>,
  settings: JournalledSettings,
  log: Runtime['log'],
): Promise<{ source: Host; target: Host }> {
  const shared = plan.shareSameHost && sameLocation(plan.source.location, plan.target.location);
  const opening = [
    open(plan.source.role, plan.source.location),
    shared ? undefined : open(plan.target.role, plan.target.location),
  ] as const;
  const [source, target] = await Promise.allSettled(opening);
  if (source.status === 'rejected' || target.status === 'rejected') {
    await Promise.allSettled(
      [source, target].flatMap((result) =>
        result.status === 'fulfilled' && result.value ? [result.value.close()] : [],
      ),
    );
    throw source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
  }
  const hosts = { source: source.value, target: target.value ?? source.value };
  for (const side of shared ? (['source'] as const) : (['source', 'target'] as const)) {
    const host = hosts[side];
    const location = plan[side].location;
    const route =
      location.kind === 'ssh' && settings.ssh.jumpHost ? ` via ${formatHostSpec(settings.ssh.jumpHost)}` : '';
    const key = host.hostKeyFingerprint ? `, host key ${host.hostKeyFingerprint}` : '';
    log.info(
      `${describeHost(host)}: connected${route}${key}${settings.sudo ? ', commands run through sudo -n' : ''}`,
    );
  }
  return hosts;
}

function startSession<S extends JournalledSettings>(
  mode: Pick<ModeRun<S, unknown>, 'record'>,
  run: {
    settings: S;
    key: string;
    opened: { source: Host; target: Host };
    durable: RecoveryHosts;
    owner: RunOwner;
    timer: PhaseTimer;
    clock: () => number;
    runtime: Runtime;
    plan: RunHosts;
    signal: AbortSignal;
    startedAt: number;
    defer: (release: () => Promise<void>) => void;
    resumed?: ResumedRun;
  },
): Session<S> {
  const { settings, opened, durable, runtime, signal } = run;
  const record: JournalRecord = {
    schema: 2,
    mode: settings.mode,
    container: run.key,
    checkpointName: settings.checkpointName,
    source: opened.source.address,
    target: opened.target.address,
    ...mode.record,
    owner: run.owner,
    status: 'running',
    entries: [],
    updatedAt: new Date().toISOString(),
  };
  const journal = new Journal(
    record,
    journalPersister(
      durable,
      (saved) => runtime.saveState(SAVED.journal, JSON.stringify(saved)),
      runtime.log,
      run.plan.journal,
    ),
  );
  const source = bindSignal(opened.source, signal, { defaultTimeoutMs: COMMAND_TIMEOUT_MS });
  const target =
    opened.target === opened.source
      ? source
      : bindSignal(opened.target, signal, { defaultTimeoutMs: COMMAND_TIMEOUT_MS });
  return {
    settings,
    key: run.key,
    opened,
    durable,
    owner: run.owner,
    journal,
    timer: run.timer,
    signal,
    startedAt: run.startedAt,
    ...(run.resumed ? { resumed: run.resumed } : {}),
    defer: run.defer,
    ctx: {
      settings,
      source,
      target,
      sourceDocker: new DockerCli(source),
      targetDocker: new DockerCli(target),
      log: runtime.log,
      journal,
      timer: run.timer,
      clock: run.clock,
      signal,
    },
  };
}

/** The work, then the journal's settlement; a failure of the work is mapped to the mode's code and remedy. */
async function workAndSettle<S extends JournalledSettings, R>(
  mode: ModeRun<S, R>,
  session: Session<S>,
  plan: RunHosts,
): Promise<Settled<R>> {
  const { log } = session.ctx;
  let result: R | undefined;
  let failure: MigrationError | undefined;
  try {
    result = await mode.work(session);
  } catch (error) {
    failure = failureOf(error, session.signal, mode.failure.step, mode.failure.code, mode.failure.remedy);
    log.warning(failure.describe());
  }
  let ended: Settled<R>;
  if (mode.settlesItself && result !== undefined) {
    ended = { ...(await mode.settlesItself(result, session)), result };
  } else {
    const settled = await settleRun(session.journal, session.durable, log, failure, plan.journal);
    if (failure && settled.status === 'failed') failure = unfinished(failure, settled.problems);
    ended = {
      status: settled.status,
      problems: settled.problems,
      ...(failure ? { failure } : {}),
      ...(result === undefined ? {} : { result }),
    };
  }
  if (!mode.afterSettle) return ended;
  const changed = await mode.afterSettle(session, ended);
  return { ...ended, ...changed };
}

/** A failure whose rollback could not finish: the error says what is left and that the next run finishes it. */
function unfinished(failure: MigrationError, problems: readonly string[]): MigrationError {
  if (problems.length === 0) return failure;
  return new MigrationError(
    failure.code,
    `${failure.message}; the rollback did not finish: ${problems.join('; ')}`,
    {
      step: failure.step,
      host: failure.host,
      detail: failure.detail,
      remedy:
        'run the action again for this container once the host is reachable: it reads the journal and finishes the rollback (the post step of this job tries too)',
      cause: failure,
    },
  );
}
