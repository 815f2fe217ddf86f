import type { ContainerInspect } from '../engine/docker/inspect.js';
import {
  GO_LINE,
  LISTENING_LINE,
  lazyDaemonCommand,
  lazyServerCommand,
} from '../engine/docker/lazy-pages.js';
import { mapped } from '../engine/engine.js';
import { MigrationError } from '../errors.js';
import { describeHost, type Host, type HostProcess, type ProcessExit } from '../host/host.js';
import { openPageRelay, type PageRelay } from '../host/page-relay.js';
import { firstLine, keepTail } from '../host/process-lines.js';
import { formatBytes } from '../host/relay.js';
import { tailLines } from '../host/shell.js';
import { blocking, type Check } from '../policy/compatibility.js';
import {
  evaluateLazyPages,
  judgeLazyStream,
  LAZY_FACTS_SCRIPT,
  LAZY_STALL_SECONDS,
  pageStreamCheck,
  parseLazyFacts,
} from '../policy/lazy-pages.js';
import type { HostFacts } from '../probe/facts.js';
import type { MemoryMode } from '../settings.js';
import { type WorkKey, workDir } from '../state/host-records.js';
import { type CheckpointResult, criuLogErrors, type PreparedCheckpoint } from './checkpoint.js';
import type { MigrationContext } from './context.js';
import { freeLoopbackPort } from './page-server.js';
import { formatCheck } from './preflight.js';

/**
 * Post-copy (memory: lazy): the source is frozen and dumped without its
 * memory, the target restores at once and takes the pages from the source's
 * CRIU page server as the processes touch them (and the rest in the
 * background). The page server's TCP stream crosses the runner inside the two
 * SSH connections. Until the last page arrived the source stays frozen and
 * alive: a broken stream removes the target and resumes the source.
 */

/** The lazy-pages daemon's directory on the target; the restore's CRIU configuration names it. */
export function lazyWorkDir(key: WorkKey): string {
  return `${workDir(key)}/lazy`;
}

/** With memory: lazy, CRIU writes its restore log into the work-dir the restore's configuration names. */
export function lazyRestoreLogs(settings: WorkKey & { memory: MemoryMode }): string[] {
  return settings.memory === 'lazy' ? [`${lazyWorkDir(settings)}/restore.log`] : [];
}

/** A dump not ready (its NUL) in this long is hung. */
const LAZY_DUMP_READY_MS = 10 * 60_000;

const REMEDY_BROKEN =
  "nothing to undo by hand: the target was removed and the source resumed where it was frozen; what the container did on the target since it started there is lost. Check the hosts' connection to the runner, then run again (or use memory: eager)";

/**
 * The lazy checks on both hosts, read-only: what CRIU needs to serve and take
 * the pages, and whether the runner can carry the page stream. Preflight mode
 * reports them; migrate's gate refuses on them (lazyGate).
 */
export async function lazyChecks(
  hosts: { source: Pick<Host, 'run'>; target: Pick<Host, 'run'> },
  tunnels: { source: boolean; target: boolean },
  facts: { source: Pick<HostFacts, 'criu'>; target: Pick<HostFacts, 'criu'> },
): Promise<Check[]> {
  const [source, target] = await Promise.all([
    hosts.source.run(LAZY_FACTS_SCRIPT, { timeoutMs: 30_000 }),
    hosts.target.run(LAZY_FACTS_SCRIPT, { timeoutMs: 30_000 }),
  ]);
  const checks = evaluateLazyPages({
    source: parseLazyFacts(source.stdout, facts.source.criu.features['uffd-noncoop']),
    target: parseLazyFacts(target.stdout, facts.target.criu.features['uffd-noncoop']),
  });
  checks.push(pageStreamCheck('source', tunnels.source), pageStreamCheck('target', tunnels.target));
  return checks;
}

/** The gate's checks for lazy pages on both hosts; refuses with LAZY_PAGES_UNSUPPORTED before anything is touched. */
export async function lazyGate(
  ctx: MigrationContext,
  hosts: { source: Host; target: Host },
  facts: { source: HostFacts; target: HostFacts },
): Promise<void> {
  // The commands go through the run's bound hosts (signal, timeouts); the tunnels are the opened hosts'.
  const checks = await lazyChecks(
    ctx,
    { source: hosts.source.tunnels !== undefined, target: hosts.target.tunnels !== undefined },
    facts,
  );
  for (const check of checks) ctx.log.info(formatCheck(check));
  const failed = blocking(checks, ctx.settings.strict);
  if (failed.length === 0) return;
  throw new MigrationError(
    'LAZY_PAGES_UNSUPPORTED',
    `memory: lazy refused before touching the container: ${failed.map((check) => `[${check.host}] ${check.name}: ${check.observed}`).join('; ')}`,
    { step: 'preflight', remedy: failed[0]?.remedy, detail: failed.map(formatCheck).join('\n') },
  );
}

/** What the lazy move keeps open from before the freeze until the last page. */
export interface LazySession {
  sourcePort: number;
  relay: PageRelay;
  /** The source's runc checkpoint: its page server, until every page was served. */
  server?: HostProcess;
  serverErr?: () => string;
  /** The target's lazy-pages daemon. */
  daemon?: HostProcess;
  daemonErr?: () => string;
  lastPageAt?: number;
  /** The restore may have started: the container may have run on the target before the last page. */
  targetMayHaveRun?: boolean;
  /** Ends whatever still runs (after success, nothing does). */
  close(): Promise<void>;
  /** Notes when a process of the session has ended, so close() leaves it be. */
  watch(process: HostProcess): void;
}

/**
 * Before the freeze: a free port on the source's loopback for the page server,
 * and the runner's relay to it from the target's loopback.
 */
export async function prepareLazy(
  ctx: MigrationContext,
  hosts: { source: Host; target: Host },
): Promise<LazySession> {
  const sourcePort = await freeLoopbackPort(ctx.source, 'the page server', 'LAZY_PAGES_UNSUPPORTED');
  const relay = await openPageRelay(hosts.source, hosts.target, sourcePort, ctx.clock).catch(
    (error: unknown) => {
      throw error instanceof MigrationError && error.code === 'SSH_DISCONNECTED'
        ? new MigrationError('LAZY_PAGES_UNSUPPORTED', error.message, {
            step: 'checkpoint',
            host: error.host,
            remedy: error.remedy,
            cause: error,
          })
        : error;
    },
  );
  ctx.log.info(
    `lazy pages: the source's page server will listen on its 127.0.0.1:${sourcePort}; the target reaches it through the runner at its 127.0.0.1:${relay.port}`,
  );
  const ended = new Set<HostProcess>();
  const session: LazySession = {
    sourcePort,
    watch(process: HostProcess) {
      void process.exit.then(() => ended.add(process));
    },
    relay,
    async close() {
      // Only what still runs: a kill by tag costs a command on the host.
      for (const process of [session.server, session.daemon])
        if (process && !ended.has(process)) process.kill();
      await relay.close();
    },
  };
  return session;
}

const LOST_WORK =
  'memory: lazy: the container ran on the target before its last page arrived; what it did there since it started is lost (the source resumes from the freeze)';

/**
 * A run that failed or was cancelled after a lazy restore may have started: the report says the
 * target's work is lost, whatever the cause (LAZY_PAGES_BROKEN says it in its remedy already).
 */
export function withLostWork(error: MigrationError, session: LazySession | undefined): MigrationError {
  if (!session?.targetMayHaveRun || session.lastPageAt !== undefined || error.code === 'LAZY_PAGES_BROKEN')
    return error;
  return new MigrationError(error.code, error.message, {
    ...(error.step ? { step: error.step } : {}),
    ...(error.host ? { host: error.host } : {}),
    detail: [error.detail, LOST_WORK].filter(Boolean).join('\n'),
    ...(error.remedy ? { remedy: `${error.remedy}. ${LOST_WORK}` } : { remedy: LOST_WORK }),
    cause: error,
  });
}

/** Starts a command that waits for the go line (engine/docker/lazy-pages.ts). */
function go(process: HostProcess): void {
  process.stdin.end(`${GO_LINE}\n`);
}

const INVENTORY_MARK = 'criu-migrate-inventory';

/**
 * Before the freeze: both CRIU ends of the move, spawned and waiting for their
 * go line, so the frozen window opens no SSH channel and starts no shell for
 * them. The source's waits to dump (and then serves the pages), the target's
 * to start the lazy-pages daemon on the images once they arrived in `imagesDir`.
 * A run that fails before a go ends them (session.close).
 */
export async function spawnLazyEnds(
  ctx: MigrationContext,
  session: LazySession,
  container: ContainerInspect,
  prepared: PreparedCheckpoint,
  imagesDir: string,
): Promise<void> {
  const [server, daemon] = await Promise.allSettled([
    ctx.source.spawn(
      lazyServerCommand(
        {
          runcRoot: prepared.runcRoot,
          containerId: container.Id,
          imagesDir: prepared.imagesDir,
          workDir: prepared.workDir,
          port: session.sourcePort,
          ...(prepared.criuConfig ? { criuConfig: prepared.criuConfig } : {}),
        },
        INVENTORY_MARK,
      ),
    ),
    ctx.target.spawn(
      lazyDaemonCommand({
        imagesDir,
        workDir: lazyWorkDir(ctx.settings),
        port: session.relay.port,
      }),
    ),
  ]);
  // Whichever started is the session's now, so close() ends it even when the other failed.
  if (server.status === 'fulfilled') {
    session.server = server.value;
    session.watch(server.value);
    session.serverErr = keepTail(server.value.stderr);
  }
  if (daemon.status === 'fulfilled') {
    session.daemon = daemon.value;
    session.watch(daemon.value);
    session.daemonErr = keepTail(daemon.value.stderr);
  }
  if (server.status === 'rejected') throw server.reason;
  if (daemon.status === 'rejected') throw daemon.reason;
}

/**
 * Freezes the source (docker pause, journalled) and starts the waiting lazy dump; returns once
 * CRIU has written every image but the lazy memory, the cgroup is frozen again and the page
 * server listens.
 */
export async function lazyFreezeAndDump(
  ctx: MigrationContext,
  container: ContainerInspect,
  prepared: PreparedCheckpoint,
  session: LazySession,
): Promise<CheckpointResult> {
  const { server } = session;
  if (!server) throw new Error('lazyFreezeAndDump before spawnLazyEnds');
  const clock = await ctx.source.run('date +%s.%N', { timeoutMs: 10_000 }).catch(() => undefined);
  const since = clock?.exitCode === 0 ? clock.stdout.trim() : '';
  const paused = await ctx.journal.intend(
    { kind: 'source-paused', containerId: container.Id, ...(/^\d+\.\d+$/.test(since) ? { since } : {}) },
    'source',
  );
  const frozenAt = ctx.clock();
  await mapped(ctx.sourceDocker.pause(container.Id, 'checkpoint'), 'CHECKPOINT_FAILED');
  paused.state = 'done';
  const dumpStart = ctx.clock();
  go(server);
  const said = await firstLine(server.stdout, server.exit, LAZY_DUMP_READY_MS);
  const inventorySha256 = new RegExp(`^${INVENTORY_MARK} ([0-9a-f]{64})$`).exec(said)?.[1];
  if (said === `${INVENTORY_MARK}-failed`) {
    throw new MigrationError(
      'CHECKPOINT_FAILED',
      'could not hold the source frozen while its pages are served',
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: tailLines(session.serverErr?.() ?? '', 5),
        remedy: 'read the lines above; run again, or use memory: eager',
      },
    );
  }
  if (!inventorySha256) {
    server.kill();
    throw new MigrationError(
      'CHECKPOINT_FAILED',
      `CRIU could not start the lazy dump of ${container.Name.replace(/^\//, '')}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: [
          said === 'timeout' ? `no dump after ${LAZY_DUMP_READY_MS / 1000} s` : '',
          said !== 'timeout' && said !== 'exit' ? `unexpected answer: ${said.slice(0, 200)}` : '',
          tailLines(session.serverErr?.() ?? '', 5),
          await criuLogErrors(ctx.source, `${prepared.workDir}/dump.log`),
        ]
          .filter(Boolean)
          .join('\n'),
        remedy:
          'read the CRIU lines above; `criu check --feature uffd-noncoop` on the source shows whether lazy pages work there',
      },
    );
  }
  const dumpMs = ctx.clock() - dumpStart;
  ctx.log.info(`lazy pages: dumped without the memory in ${Math.round(dumpMs)} ms; the source stays frozen`);
  return {
    frozenAt,
    frozenFor: ctx.clock() - frozenAt,
    imagesDir: prepared.imagesDir,
    workDir: prepared.workDir,
    dumpMs,
    inventorySha256,
    stepsMs: { pause: dumpStart - frozenAt, dump: dumpMs },
  };
}

/**
 * On the target, before the restore: starts the waiting lazy-pages daemon on the images that
 * arrived; it connects through the relay once the restore asks. Returns once its socket exists.
 */
export async function startLazyDaemon(ctx: MigrationContext, session: LazySession): Promise<void> {
  const { daemon } = session;
  if (!daemon) throw new Error('startLazyDaemon before spawnLazyEnds');
  go(daemon);
  const said = await firstLine(daemon.stdout, daemon.exit, 30_000);
  session.targetMayHaveRun = said === LISTENING_LINE;
  if (said !== LISTENING_LINE) {
    throw new MigrationError('LAZY_PAGES_BROKEN', "the target's lazy-pages daemon did not start", {
      step: 'restore',
      host: describeHost(ctx.target),
      detail: [
        said === 'timeout' ? 'no answer in 30 s' : said === 'exit' ? 'it exited' : said,
        tailLines(session.daemonErr?.() ?? '', 5),
        await criuLogErrors(ctx.target, `${lazyWorkDir(ctx.settings)}/lazy-pages.log`),
      ]
        .filter(Boolean)
        .join('\n'),
      remedy: REMEDY_BROKEN,
    });
  }
}

/**
 * After the restore: waits until every page arrived (both CRIU ends exit 0),
 * or the stream broke (an end failed, or no byte moved for LAZY_STALL_SECONDS).
 * A broken stream throws LAZY_PAGES_BROKEN after stopping both ends; the
 * rollback then removes the target before it resumes the source.
 */
export async function awaitLastPage(ctx: MigrationContext, session: LazySession): Promise<number> {
  const { server, daemon, relay } = session;
  if (!server || !daemon) throw new Error('awaitLastPage before the dump and the daemon');
  let sourceEnd: ProcessExit | undefined;
  let targetEnd: ProcessExit | undefined;
  let stalledSeconds: number | undefined;
  let finish = (): void => {};
  const settled = new Promise<void>((resolve) => {
    finish = resolve;
  });
  void server.exit.then((end) => {
    sourceEnd = end;
    if (end.exitCode !== 0 || targetEnd) finish();
  });
  void daemon.exit.then((end) => {
    targetEnd = end;
    if (end.exitCode !== 0 || sourceEnd) finish();
  });
  const onAbort = (): void => finish();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const progress = setInterval(() => {
    const quietFor = (ctx.clock() - relay.lastMovedAt()) / 1000;
    if (quietFor > LAZY_STALL_SECONDS) {
      stalledSeconds = Math.round(quietFor);
      finish();
      return;
    }
    ctx.log.info(`lazy pages: ${formatBytes(relay.bytes())} arrived`);
  }, 2_000);
  try {
    await settled;
  } finally {
    clearInterval(progress);
    ctx.signal.removeEventListener('abort', onAbort);
  }
  ctx.signal.throwIfAborted();
  const verdict = judgeLazyStream({
    ...(sourceEnd ? { source: sourceEnd } : {}),
    ...(targetEnd ? { target: targetEnd } : {}),
    ...(stalledSeconds !== undefined ? { stalledSeconds } : {}),
  });
  if (verdict.ok) {
    session.lastPageAt = ctx.clock();
    ctx.log.info(`lazy pages: every page arrived (${formatBytes(relay.bytes())} through the runner)`);
    await relay.close();
    return session.lastPageAt;
  }
  // Stop both ends at once: the target must not run on with pages that never came.
  relay.cut();
  server.kill();
  daemon.kill();
  const host = verdict.host === 'source' ? ctx.source : ctx.target;
  throw new MigrationError(
    'LAZY_PAGES_BROKEN',
    `the page stream broke after ${formatBytes(relay.bytes())}: ${verdict.why}`,
    {
      step: 'restore',
      host: verdict.host === 'runner' ? 'runner' : describeHost(host),
      detail: [
        relay.problem() ? `relay: ${relay.problem()}` : '',
        session.serverErr ? tailLines(session.serverErr(), 3) : '',
        session.daemonErr ? tailLines(session.daemonErr(), 3) : '',
        await criuLogErrors(ctx.target, `${lazyWorkDir(ctx.settings)}/lazy-pages.log`).catch(() => ''),
      ]
        .filter(Boolean)
        .join('\n'),
      remedy: REMEDY_BROKEN,
    },
  );
}
