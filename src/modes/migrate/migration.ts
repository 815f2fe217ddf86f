import { DockerCli } from '../../engine/docker/docker-cli.js';
import type { ContainerInspect } from '../../engine/docker/inspect.js';
import { allSettledOrThrow, asMigrationError, MigrationError } from '../../errors.js';
import { bindSignal } from '../../host/abortable.js';
import { countCommands } from '../../host/counting.js';
import type { Host } from '../../host/host.js';
import { formatBytes } from '../../host/relay.js';
import { StreamRoutes } from '../../host/stream-routes.js';
import {
  type CheckpointMeasure,
  type CheckpointResult,
  freezeAndDump,
  measureCheckpoint,
  prepareCheckpoint,
} from '../../phases/checkpoint.js';
import type { Logger, MigrationContext } from '../../phases/context.js';
import {
  closeRoute,
  type OpenRoute,
  openRoute,
  planRoute,
  type RoutePlan,
  routeFacts,
} from '../../phases/direct-route.js';
import { finalize } from '../../phases/finalize.js';
import {
  awaitLastPage,
  type LazySession,
  lazyFreezeAndDump,
  lazyGate,
  lazyRestoreLogs,
  lazyWorkDir,
  prepareLazy,
  spawnLazyEnds,
  startLazyDaemon,
  withLostWork,
} from '../../phases/lazy-pages.js';
import {
  freeLoopbackPort,
  type PageServerSession,
  type PageStreamTally,
  startPageServer,
} from '../../phases/page-server.js';
import { preflight } from '../../phases/preflight.js';
import { type LogFollower, prepareRestore, restore } from '../../phases/restore.js';
import { settleRestoreConfig } from '../../phases/restore-config.js';
import { type StageResult, stage } from '../../phases/stage.js';
import {
  type ArmedMove,
  armState,
  fireState,
  type MoveResult,
  moveState,
  negotiateCodec,
  planTransfer,
  probeContainerdTmp,
  stagingDir,
} from '../../phases/transfer.js';
import { verify } from '../../phases/verify.js';
import {
  type MovingVolume,
  prepareSnapshots,
  prepareTargetVolumes,
  sendVolumes,
  volumeFacts,
} from '../../phases/volumes.js';
import { restoreFactsOf } from '../../policy/criu-config.js';
import { planVolumes } from '../../policy/volumes.js';
import type { HostFacts } from '../../probe/facts.js';
import { FrozenWindow } from '../../report/frozen-window.js';
import type { HostFacts as HostSummary, MigrationMetadata, RunStatus } from '../../report/metadata.js';
import { METADATA_SCHEMA_VERSION, metadataError, restorePathFacts } from '../../report/metadata.js';
import type { PhaseTimer } from '../../report/timings.js';
import type { MigrateSettings } from '../../settings.js';
import { COMMIT_REMEDY } from '../../state/guard.js';
import { isCommitted, type Journal } from '../../state/journal.js';
import { type RecoveryHosts, recover } from '../../state/recovery.js';
import { readSeries, writeSeries } from '../../state/series.js';
import { failureOf } from '../run-control.js';
import type { UnitHooks } from './unit-coordinator.js';

const ROLLED_BACK_REMEDY =
  'nothing to undo by hand: the source was resumed where it was frozen and the target cleaned; fix the cause named above and run again';

/** Ordinary commands on a host get this long unless they say otherwise. */
export const COMMAND_TIMEOUT_MS = 120_000;

export interface MigrateDeps {
  settings: MigrateSettings;
  /** The hosts as opened; the phases get them bound to `signal`. */
  source: Host;
  target: Host;
  /** The same hosts for rollback and roll-forward: not bound to the signal, reconnecting when dropped. */
  recoveryHosts?: RecoveryHosts;
  log: Logger;
  timer: PhaseTimer;
  journal: Journal;
  /** Aborted on cancellation or when the run's timeout is spent; its reason is the error to report. */
  signal: AbortSignal;
  clock?: () => number;
  now?: () => Date;
  /** When the run started (clock reading). */
  startedAt?: number;
  /** A member of a compose unit: where it waits for the other members (unit-coordinator.ts). */
  unit?: UnitHooks;
}

export interface MigrationOutcome {
  status: RunStatus;
  metadata: MigrationMetadata;
  error?: MigrationError;
  /** Past the commit point: what could not be cleaned up, each with what to do. */
  leftovers: string[];
}

function hostSummary(host: Host, facts: HostFacts | undefined): HostSummary {
  return {
    address: host.address,
    kernel: facts?.kernel.release,
    arch: facts?.kernel.arch,
    criu: facts?.criu.version?.raw,
    docker: facts?.docker.serverVersion?.raw,
    containerd: facts?.docker.containerdVersion?.raw,
    runc: facts?.docker.runcVersion?.raw ?? facts?.runc.version?.raw,
  };
}

/**
 * One live migration, phase by phase. Nothing before the freeze changes the
 * source. Every side effect goes into the journal first; until the target is
 * verified (the commit point) a failure or cancellation rolls the journal
 * back, after it the run only rolls forward.
 */
export async function migrate(deps: MigrateDeps): Promise<MigrationOutcome> {
  const { settings, log, timer, journal, signal } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const now = deps.now ?? (() => new Date());
  const runStart = deps.startedAt ?? clock();
  const startedAt = now().toISOString();
  const raw = deps.recoveryHosts ?? { source: deps.source, target: deps.target };
  const noteCommand = (): void => {
    commandTimes.push(clock());
  };
  const source = countCommands(
    bindSignal(deps.source, signal, { defaultTimeoutMs: COMMAND_TIMEOUT_MS }),
    noteCommand,
  );
  const target = countCommands(
    bindSignal(deps.target, signal, { defaultTimeoutMs: COMMAND_TIMEOUT_MS }),
    noteCommand,
  );
  const ctx: MigrationContext = {
    settings,
    source,
    target,
    sourceDocker: new DockerCli(source),
    targetDocker: new DockerCli(target),
    log,
    journal,
    timer,
    clock,
    signal,
    streams: new StreamRoutes(),
  };
  if (ctx.streams && settings.streamStallSeconds !== undefined)
    ctx.streams.stallSeconds = settings.streamStallSeconds;
  let routePlan: RoutePlan | undefined;
  let openedRoute: OpenRoute | undefined;

  let facts: { source?: HostFacts; target?: HostFacts } = {};
  let container: ContainerInspect | undefined;
  let sourceHolder: ContainerInspect | undefined;
  let staged: StageResult | undefined;
  let dumped: CheckpointResult | undefined;
  let moved: MoveResult | undefined;
  let measure: CheckpointMeasure | undefined;
  let follower: LogFollower | undefined;
  let volumes: MovingVolume[] = [];
  let downtimeMs: number | undefined;
  // memory: lazy: the page stream from the frozen source, open from before the freeze to the last page.
  let lazy: LazySession | undefined;
  // The frozen state's streams, set up before the freeze and fired inside it.
  let armed: ArmedMove | undefined;
  // memory: overlap: the target's page server, taking the pages while the source dumps them.
  let overlap: PageServerSession | undefined;
  let pageTally: PageStreamTally | undefined;
  let lastPageMs: number | undefined;
  // Where the frozen window goes, and the start of every command sent to the hosts (for its count).
  let window: FrozenWindow | undefined;
  let frozenWindowMs: Record<string, number> | undefined;
  const commandTimes: number[] = [];
  const tunnelHosts = { source: deps.source, target: deps.target };
  let status: RunStatus = 'succeeded';
  let failure: MigrationError | undefined;
  let leftovers: string[] = [];
  let phase = 'preflight';
  const enter = (next: string): void => {
    phase = next;
  };

  try {
    const checked = await log.group('Preflight: both hosts and the container', () =>
      timer.time('preflight', () => preflight(ctx)),
    );
    facts = { source: checked.source, target: checked.target };
    container = checked.container;
    sourceHolder = checked.sourceHolder;
    const found = container;
    signal.throwIfAborted();
    if (settings.memory === 'lazy') await lazyGate(ctx, tunnelHosts, checked);
    routePlan = await planRoute(source, settings, log);
    signal.throwIfAborted();

    enter('stage');
    const plannedRoute = routePlan;
    // memory: overlap: the page server's port is in the run key's line, so it is chosen first.
    const pagePorts =
      settings.memory === 'overlap'
        ? {
            target: await freeLoopbackPort(ctx.target, "the target's page server"),
            source:
              plannedRoute.choice.route === 'direct'
                ? await freeLoopbackPort(ctx.source, "the source's forward to the page server")
                : 0,
          }
        : undefined;
    openedRoute =
      plannedRoute.choice.route === 'direct'
        ? await log.group('Direct route: the source streams to the target itself', () =>
            openRoute(
              ctx,
              plannedRoute,
              pagePorts ? { local: pagePorts.source, remote: pagePorts.target } : undefined,
            ),
          )
        : undefined;
    if (ctx.streams && openedRoute) ctx.streams.direct = openedRoute;
    const codec = await negotiateCodec(ctx);
    const containerd = await probeContainerdTmp(ctx);
    const unpackDir = containerd.found ? containerd.dir : undefined;
    const targetRoot = checked.target.docker.rootDir ?? '/var/lib/docker';
    const volumePlans = checked.volumes ? planVolumes(found, checked.volumes) : [];
    if (volumePlans.length > 0) {
      enter('volumes');
      // Before the container is created there, or docker create would make them empty.
      volumes = await log.group('Volumes: prepare them on the target', () =>
        timer.time('volumes', async () => {
          const prepared = await prepareTargetVolumes(ctx, volumePlans);
          if (prepared.some((volume) => volume.plan.copyContents)) await prepareSnapshots(ctx);
          return prepared;
        }),
      );
      if (settings.volumePrecopy) {
        const moving = volumes;
        await log.group('Volumes: copy the bulk while the container runs', () =>
          timer.time('volume-bulk', () => sendVolumes(ctx, moving, codec, 'bulk')),
        );
      }
      enter('stage');
    }
    staged = await log.group('Stage: image and container on the target', () =>
      timer.time('stage', () =>
        stage(ctx, found, targetRoot, codec, {
          route: checked.route,
          ...(checked.sourceHolder ? { sourceHolder: checked.sourceHolder } : {}),
          ...(checked.target.kernel.arch ? { targetArch: checked.target.kernel.arch } : {}),
          restoreFacts: restoreFactsOf(checked.target.docker),
          ...(settings.memory === 'lazy' ? { lazyWorkDir: lazyWorkDir(settings) } : {}),
          tcpEstablished: checked.tcpEstablished,
        }),
      ),
    );
    const ready = staged;
    enter('checkpoint');
    // Everything the frozen window needs is prepared here, so it holds only
    // the pause, the dump, the bytes and the restore.
    // Names the run in Docker's checkpoint directory, so containerd's copies can be found.
    const marker = `${ready.targetContainerId}/${settings.checkpointName}`;
    if (settings.memory === 'lazy') lazy = await prepareLazy(ctx, tunnelHosts);
    const pageStream = lazy;
    const [prepared, sourceInit, plan, restoring] = await allSettledOrThrow([
      // Into a holder's namespace: the container's own one stays out of the dump. One that joins
      // a holder already is runc's external namespace, which runc marks itself.
      prepareCheckpoint(ctx, found, {
        externalNetns: checked.route === 'holder' && !checked.sourceHolder,
        tcpEstablished: checked.tcpEstablished,
      }),
      ctx.sourceDocker.processes(found.Id, 'checkpoint').then((list) => list[0]),
      planTransfer(ctx, found, ready, codec, containerd, marker),
      prepareRestore(ctx, ready, { marker }, targetRoot, unpackDir, lazyRestoreLogs(settings)).then(
        (prepared) => {
          follower = prepared.follower;
          return prepared;
        },
      ),
    ]);
    signal.throwIfAborted();
    // The images directory is named before the dump: both streams are set up now, held for their
    // go. Not for post-copy moves: their small streams measured slower armed (see moveState).
    const armedMove =
      settings.memory === 'lazy' ? undefined : await armState(ctx, found, prepared.imagesDir, ready, plan);
    armed = armedMove;
    if (pagePorts) {
      overlap = await startPageServer(
        ctx,
        tunnelHosts,
        containerd.found ? stagingDir(settings) : ready.targetCheckpointDir,
        pagePorts,
        openedRoute?.pageForwardCommand,
      );
    }
    const pageServer = overlap;
    if (pageStream)
      await spawnLazyEnds(
        ctx,
        pageStream,
        found,
        prepared,
        containerd.found ? stagingDir(settings) : ready.targetCheckpointDir,
      );
    await deps.unit?.allReady();

    dumped = await log.group('Checkpoint: freeze and dump the source', () =>
      timer.time('checkpoint', () =>
        pageStream
          ? lazyFreezeAndDump(ctx, found, prepared, pageStream)
          : freezeAndDump(
              ctx,
              found,
              pageServer ? { ...prepared, pageServer: pageServer.address } : prepared,
              undefined,
              // The pages are on the target already: only the small images are left to stream.
              pageServer ? 'none' : codec,
              deps.unit?.allPaused,
            ).catch(async (error: unknown) => {
              throw pageServer ? await pageServer.explain(error) : error;
            }),
      ),
    );
    signal.throwIfAborted();
    window = new FrozenWindow(clock, dumped.frozenAt, commandTimes);
    window.mark('checkpoint');
    for (const [step, ms] of Object.entries(dumped.stepsMs ?? {})) window.split(step, 'checkpoint', ms);

    enter('transfer');
    const frozen = dumped;
    const moving = volumes;
    moved = await log.group('Transfer: checkpoint, writable layer and volumes', () =>
      timer.time('transfer', async () => {
        // The volumes' last pass runs beside the checkpoint's streams: both while frozen.
        const [state, , pages] = await allSettledOrThrow([
          armedMove
            ? fireState(ctx, armedMove, frozen, plan)
            : moveState(ctx, found, frozen, ready, plan, 'relay'),
          moving.length > 0
            ? timer.time('volume-frozen', () => sendVolumes(ctx, moving, codec, 'frozen'))
            : Promise.resolve(undefined),
          pageServer?.finished(),
        ]);
        if (pages) pageTally = pages;
        return state;
      }),
    );
    signal.throwIfAborted();
    window.mark('transfer');
    if (pageServer) {
      await pageServer.close();
      log.info(
        `overlap: the memory reached the target during the dump (${pageServer.route === 'direct' ? 'host to host' : `${formatBytes(pageServer.runnerBytes())} through the runner`})`,
      );
    }

    enter('restore');
    if (pageStream) {
      await startLazyDaemon(ctx, pageStream);
      window?.mark('lazy-daemon');
    }
    await deps.unit?.beforeRestore();
    const restored = await log.group('Restore on the target', () =>
      timer.time('restore', () => restore(ctx, ready, restoring)),
    );
    deps.unit?.restored();
    follower = undefined;
    // Nothing more moves host to host: the run's key goes before verification starts.
    if (openedRoute) {
      if (ctx.streams) ctx.streams.direct = undefined;
      await closeRoute(ctx, openedRoute);
    }
    downtimeMs = Math.round(restored.runningAt - frozen.frozenAt);
    // The restore phase goes on after the container runs (clean-up): the window ends at running.
    window.markAt('restore', restored.runningAt);
    frozenWindowMs = window.toRecord();
    log.info(window.describe());
    log.info(
      `restore: running on the target after ${Math.round(restored.restoreMs)} ms; frozen for ${downtimeMs} ms`,
    );
    if (pageStream) {
      // Post-copy: the commit point waits for the last page; until then the source stays frozen.
      const lastPageAt = await log.group('Lazy pages: the memory follows the container', () =>
        timer.time('lazy-pages', () => awaitLastPage(ctx, pageStream)),
      );
      lastPageMs = Math.round(lastPageAt - frozen.frozenAt);
      log.info(`lazy pages: the last page arrived ${lastPageMs} ms after the freeze`);
    }
    // Measured only now: nothing that can wait ran while the service was down.
    measure = await measureCheckpoint(ctx, frozen);
    const stats = measure.stats;
    const criuSaid = stats?.frozenTimeUs
      ? ` (CRIU: frozen ${Math.round(stats.frozenTimeUs / 1000)} ms, memory dump ${Math.round((stats.memdumpTimeUs ?? 0) / 1000)} ms, ${stats.pagesWritten ?? 0} pages written)`
      : '';
    log.info(`checkpoint: ${measure.imagesBytes} bytes dumped in ${Math.round(frozen.dumpMs)} ms${criuSaid}`);

    enter('verify');
    await log.group('Verify the restored container', () =>
      timer.time('verify', () => verify(ctx, ready, sourceInit)),
    );
    await settleRestoreConfig(ctx, ready.restoreConfig);
    await deps.unit?.allVerified();
    // The point of no return: from here on the target is the service. It must reach a
    // host's journal, or the source is not killed (a later run would not know of it).
    // A unit member is past it already (its unit's marker): cancelled now, it still commits.
    await journal.around(
      { kind: 'committed', targetContainerId: ready.targetContainerId },
      'any-host',
      async () => {
        if (!deps.unit) signal.throwIfAborted();
      },
    );
  } catch (error) {
    const remedy =
      asMigrationError(error, 'COMMAND_FAILED').code === 'COMMIT_NOT_DURABLE'
        ? COMMIT_REMEDY
        : ROLLED_BACK_REMEDY;
    failure = withLostWork(failureOf(error, signal, phase, 'COMMAND_FAILED', remedy), lazy);
    deps.unit?.failed(failure);
    log.warning(failure.describe());
  }
  // A follower that never got its cue (the run failed before the restore).
  await follower?.stop(false).catch(() => '');
  // A page stream still open (the run failed or was cancelled before the last page): ended
  // before the rollback, so CRIU holds nothing of the source when it is resumed.
  await lazy?.close().catch(() => {});
  await overlap?.close().catch(() => {});
  // Streams armed but never fired (the dump failed, a cancel, a unit member failed): ended
  // before the rollback, so no end of theirs waits on either host.
  await armed?.disarm().catch(() => {});

  if (isCommitted(journal.record)) {
    // Cancelled or not, a verified target is kept and the source retired.
    failure = undefined;
    const committed = journal.record.entries.find((entry) => entry.action.kind === 'committed')?.action;
    if (container && committed?.kind === 'committed' && committed.targetContainerId) {
      await carrySeries(raw, container.Id, committed.targetContainerId, log);
    }
    try {
      const retired = await log.group('Finalize: retire the source', () =>
        timer.time('finalize', () =>
          finalize(
            ctx,
            raw,
            found(container),
            volumes.map((volume) => volume.plan.name),
            sourceHolder,
          ),
        ),
      );
      leftovers = retired.leftovers;
    } catch (error) {
      leftovers = [`retiring the source: ${asMigrationError(error, 'SOURCE_STOP_FAILED').describe()}`];
    }
    // With leftovers the journal stays open (committed): the next run finishes the roll-forward.
    await journal.finish(leftovers.length === 0 ? 'done' : 'committed').catch(() => {});
  } else if (failure?.code === 'COMMIT_NOT_DURABLE') {
    // Both copies stay: the verified target runs, the source stays frozen. Closed in the
    // saved state so the post step leaves them be; the hosts keep the open journal.
    status = 'failed';
    log.warning(
      `the target ${staged?.targetContainerId.slice(0, 12) ?? ''} runs the service; the source ${container?.Id.slice(0, 12) ?? ''} was left frozen, not killed`,
    );
    await journal
      .finish('failed', { error: `${failure.code}: ${failure.message}` }, 'runner-only')
      .catch(() => {});
  } else if (failure) {
    const touched = journal.record.entries.length > 0;
    status = touched ? 'rolled-back' : 'refused';
    if (touched) {
      const outcome = await log.group('Rollback', () =>
        timer.time('rollback', () => recover(journal.record, raw, log)),
      );
      const error = `${failure.code}: ${failure.message}`;
      if (outcome.problems.length === 0) {
        await journal.finish('rolled-back', { error }).catch(() => {});
      } else {
        status = 'failed';
        // Left open: the next run or the post step tries the rest again.
        await journal.finish('running', { error }).catch(() => {});
        failure = new MigrationError(
          failure.code,
          `${failure.message}; the rollback did not finish: ${outcome.problems.join('; ')}`,
          {
            step: failure.step,
            host: failure.host,
            detail: failure.detail,
            remedy: outcome.sourceLeftFrozen
              ? 'the source is still frozen because the target container could not be confirmed gone: remove it on the target (docker rm -f), then run this action again or docker unpause the source'
              : 'run the action again for this container: it reads the journal on both hosts and finishes the rollback',
            cause: failure,
          },
        );
      }
    }
  }
  timer.endAll();

  const streams: MigrationMetadata['checkpoint']['streams'] = {};
  if (moved) {
    streams.checkpoint = {
      bytes: moved.checkpoint.bytes,
      sha256: moved.checkpoint.sha256,
      ms: Math.round(moved.checkpoint.ms),
      codec: moved.codecs.checkpoint.codec,
      codecReason: moved.codecs.checkpoint.reason,
    };
    streams.writableLayer = {
      bytes: moved.writableLayer.bytes,
      sha256: moved.writableLayer.sha256,
      ms: Math.round(moved.writableLayer.ms),
      codec: moved.codecs.writableLayer.codec,
      codecReason: moved.codecs.writableLayer.reason,
    };
  }
  if (pageTally) streams.pages = { bytes: pageTally.bytes, sha256: pageTally.sha256, codec: 'none' };
  const imageMove = staged?.imageTransfer;
  if (imageMove)
    streams.image = { bytes: imageMove.bytes, sha256: imageMove.sha256, ms: Math.round(imageMove.ms) };
  const volumeBytes = volumes.reduce(
    (sum, volume) => sum + volume.passes.reduce((bytes, pass) => bytes + pass.bytes, 0),
    0,
  );
  const transferredBytes =
    Object.values(streams).reduce((sum, stream) => sum + (stream?.bytes ?? 0), 0) + volumeBytes;
  const lazyBytes =
    (lazy && lastPageMs !== undefined ? lazy.relay.bytes() : 0) + (overlap ? overlap.runnerBytes() : 0);
  const routeFactsOf: MigrationMetadata['route'] = routePlan
    ? routeFacts(settings.route, routePlan, openedRoute !== undefined, ctx.streams, lazyBytes)
    : undefined;
  const metadata: MigrationMetadata = {
    schemaVersion: METADATA_SCHEMA_VERSION,
    run: { mode: settings.mode, status, startedAt, finishedAt: now().toISOString() },
    hosts: { source: hostSummary(deps.source, facts.source), target: hostSummary(deps.target, facts.target) },
    container: {
      name: container ? container.Name.replace(/^\//, '') : settings.container,
      sourceId: container?.Id,
      targetId: status === 'succeeded' ? staged?.targetContainerId : undefined,
      imageId: container?.Image,
      imageRef: staged?.imageRef ?? container?.Config.Image,
    },
    checkpoint: {
      name: settings.checkpointName,
      bytes: measure?.imagesBytes,
      transferredBytes: transferredBytes || undefined,
      streams,
      ...(moved ? restorePathFacts(moved.restorePath) : {}),
    },
    timings: {
      phasesMs: timer.toRecord(),
      downtimeMs,
      durationMs: Math.round(clock() - runStart),
      ...(lastPageMs !== undefined ? { lastPageMs } : {}),
      ...(frozenWindowMs ? { frozenWindowMs } : {}),
      ...(lazy && lastPageMs !== undefined ? { lazyPageBytes: lazy.relay.bytes() } : {}),
    },
    criu: measure?.stats,
    ...(volumes.length > 0 ? { volumes: volumeFacts(volumes) } : {}),
    error: failure ? metadataError(failure) : undefined,
    leftovers: leftovers.length > 0 ? leftovers : undefined,
    ...(routeFactsOf ? { route: routeFactsOf } : {}),
  };
  return { status, metadata, error: failure, leftovers };
}

function found(container: ContainerInspect | undefined): ContainerInspect {
  if (!container) throw new Error('committed without a container');
  return container;
}

/**
 * The moved container continues the source container's checkpoint series:
 * its next checkpoint, on its new host, joins the same series in the store.
 */
async function carrySeries(
  hosts: RecoveryHosts,
  sourceId: string,
  targetId: string,
  log: Logger,
): Promise<void> {
  try {
    const { series } = await readSeries(hosts.source, sourceId);
    await writeSeries(hosts.target, {
      series,
      containerId: targetId,
      from: sourceId,
      via: 'migrate',
      at: new Date().toISOString(),
    });
    log.info(`checkpoint series ${series} carried over to the moved container ${targetId.slice(0, 12)}`);
  } catch (error) {
    log.warning(
      `could not carry checkpoint series over to ${targetId.slice(0, 12)}: ${error instanceof Error ? error.message : String(error)}; its next checkpoint starts a new series`,
    );
  }
}
