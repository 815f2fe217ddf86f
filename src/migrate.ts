import { DockerCli } from './docker/docker-cli.js';
import type { ContainerInspect } from './docker/inspect.js';
import { asMigrationError, MigrationError } from './errors.js';
import type { HostFacts } from './facts.js';
import type { Host } from './host/host.js';
import { MigrationJournal } from './migration-state.js';
import { type CheckpointResult, freezeAndDump, prepareCheckpoint } from './phases/checkpoint.js';
import type { Logger, MigrationContext } from './phases/context.js';
import { finalize } from './phases/finalize.js';
import { preflight } from './phases/preflight.js';
import { restore } from './phases/restore.js';
import { type RollbackPlan, rollback } from './phases/rollback.js';
import { stage } from './phases/stage.js';
import { type MoveResult, moveState, negotiateCodec } from './phases/transfer.js';
import { verify } from './phases/verify.js';
import type { HostFacts as HostSummary, MigrationMetadata, RunStatus } from './report/metadata.js';
import { METADATA_SCHEMA_VERSION, metadataError } from './report/metadata.js';
import type { PhaseTimer } from './report/timings.js';
import type { Settings } from './settings.js';

export interface MigrateDeps {
  settings: Settings;
  source: Host;
  target: Host;
  log: Logger;
  timer: PhaseTimer;
  clock?: () => number;
  now?: () => Date;
  /** When the run started (clock reading), for the overall timeout. */
  startedAt?: number;
}

export interface MigrationOutcome {
  status: RunStatus;
  metadata: MigrationMetadata;
  error?: MigrationError;
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
 * source; after it, every failure ends in rollback, which resumes the source.
 */
export async function migrate(deps: MigrateDeps): Promise<MigrationOutcome> {
  const { settings, source, target, log, timer } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const now = deps.now ?? (() => new Date());
  const runStart = deps.startedAt ?? clock();
  const startedAt = now().toISOString();
  const deadline = runStart + settings.timeoutMinutes * 60_000;
  const ctx: MigrationContext = {
    settings,
    source,
    target,
    sourceDocker: new DockerCli(source),
    targetDocker: new DockerCli(target),
    log,
    journal: new MigrationJournal(settings.checkpointName, now),
    timer,
    clock,
    checkDeadline(step) {
      if (clock() > deadline) {
        throw new MigrationError(
          'TIMEOUT',
          `the run took longer than timeout (${settings.timeoutMinutes} min)`,
          {
            step,
            remedy: 'raise the timeout input, or look at the phase timings for the slow step',
          },
        );
      }
    },
  };

  const plan: RollbackPlan = { sourcePaused: false, restoreAttempted: false };
  let facts: { source?: HostFacts; target?: HostFacts } = {};
  let container: ContainerInspect | undefined;
  let dumped: CheckpointResult | undefined;
  let moved: MoveResult | undefined;
  let downtimeMs: number | undefined;
  let status: RunStatus = 'succeeded';
  let failure: MigrationError | undefined;
  const peer = (host: Host) => (host === source ? target.address : source.address);
  const record = async (
    host: Host,
    role: 'source' | 'target',
    patch: Parameters<MigrationJournal['record']>[2],
  ) => {
    try {
      await ctx.journal.record(host, role, { peer: peer(host), container: settings.container, ...patch });
    } catch (error) {
      log.warning(
        `could not write the migration record on ${role}: ${asMigrationError(error, 'COMMAND_FAILED').message}`,
      );
    }
  };

  try {
    const checked = await log.group('Preflight: both hosts and the container', () =>
      timer.time('preflight', () => preflight(ctx)),
    );
    facts = { source: checked.source, target: checked.target };
    container = checked.container;
    plan.container = container;
    const ids = { sourceContainerId: container.Id };
    await Promise.all([
      record(source, 'source', { phase: 'stage', status: 'running', ...ids }),
      record(target, 'target', { phase: 'stage', status: 'running', ...ids }),
    ]);
    ctx.checkDeadline('stage');

    const codec = await negotiateCodec(ctx);
    const targetRoot = checked.target.docker.rootDir ?? '/var/lib/docker';
    const staged = await log.group('Stage: image and container on the target', () =>
      timer.time('stage', () =>
        stage(
          ctx,
          checked.container,
          targetRoot,
          (id) => {
            plan.targetContainerId = id;
          },
          codec,
        ),
      ),
    );
    plan.staged = staged;
    const prepared = await prepareCheckpoint(ctx, checked.container);
    await record(target, 'target', { phase: 'stage', targetContainerId: staged.targetContainerId });
    const sourceInit = (await ctx.sourceDocker.processes(container.Id, 'checkpoint'))[0];
    ctx.checkDeadline('checkpoint');

    dumped = await log.group('Checkpoint: freeze and dump the source', () =>
      timer.time('checkpoint', () =>
        freezeAndDump(ctx, checked.container, prepared, async () => {
          plan.sourcePaused = true;
          await record(source, 'source', { phase: 'checkpoint', status: 'frozen' });
        }),
      ),
    );
    const stats = dumped.stats;
    const criuSaid = stats?.frozenTimeUs
      ? ` (CRIU: frozen ${Math.round(stats.frozenTimeUs / 1000)} ms, memory dump ${Math.round((stats.memdumpTimeUs ?? 0) / 1000)} ms, ${stats.pagesWritten ?? 0} pages written)`
      : '';
    log.info(`checkpoint: ${dumped.imagesBytes} bytes dumped in ${Math.round(dumped.dumpMs)} ms${criuSaid}`);
    ctx.checkDeadline('transfer');

    const frozen = dumped;
    moved = await log.group('Transfer: checkpoint and writable layer', () =>
      timer.time('transfer', () => moveState(ctx, checked.container, frozen, staged, codec)),
    );
    ctx.checkDeadline('restore');

    plan.restoreAttempted = true;
    const restored = await log.group('Restore on the target', () =>
      timer.time('restore', () => restore(ctx, staged)),
    );
    downtimeMs = Math.round(restored.runningAt - frozen.frozenAt);
    log.info(
      `restore: running on the target after ${Math.round(restored.restoreMs)} ms; frozen for ${downtimeMs} ms`,
    );

    await log.group('Verify the restored container', () =>
      timer.time('verify', () => verify(ctx, staged, sourceInit)),
    );
    await record(target, 'target', { phase: 'verify', status: 'restored' });

    const retired = await log.group('Finalize: retire the source', () =>
      timer.time('finalize', () => finalize(ctx, checked.container, staged)),
    );
    plan.sourcePaused = false;
    await Promise.all([
      record(source, 'source', {
        phase: 'finalize',
        status: 'done',
        sourceRestartPolicy: retired.sourceRestartPolicy,
      }),
      record(target, 'target', { phase: 'finalize', status: 'done' }),
    ]);
  } catch (error) {
    failure = asMigrationError(error, 'COMMAND_FAILED');
    log.warning(failure.describe());
    const touched = plan.sourcePaused || plan.targetContainerId !== undefined;
    status = touched ? 'rolled-back' : 'refused';
    if (touched) {
      try {
        await log.group('Rollback', () => timer.time('rollback', () => rollback(ctx, plan)));
        const patch = { status: 'rolled-back' as const, error: `${failure.code}: ${failure.message}` };
        await Promise.all([record(source, 'source', patch), record(target, 'target', patch)]);
      } catch (rollbackError) {
        status = 'failed';
        const rolled = asMigrationError(rollbackError, 'ROLLBACK_FAILED', { step: 'rollback' });
        log.warning(rolled.describe());
        failure = new MigrationError(failure.code, `${failure.message}; then ${rolled.message}`, {
          step: failure.step,
          host: failure.host,
          detail: failure.detail,
          remedy: rolled.remedy,
          cause: failure,
        });
      }
    }
  } finally {
    timer.endAll();
  }

  const streams: MigrationMetadata['checkpoint']['streams'] = {};
  if (moved) {
    streams.checkpoint = { bytes: moved.checkpoint.bytes, sha256: moved.checkpoint.sha256 };
    streams.writableLayer = { bytes: moved.writableLayer.bytes, sha256: moved.writableLayer.sha256 };
  }
  const imageMove = plan.staged?.imageTransfer;
  if (imageMove) streams.image = { bytes: imageMove.bytes, sha256: imageMove.sha256 };
  const transferredBytes = Object.values(streams).reduce((sum, stream) => sum + (stream?.bytes ?? 0), 0);
  const metadata: MigrationMetadata = {
    schemaVersion: METADATA_SCHEMA_VERSION,
    run: { mode: settings.mode, status, startedAt, finishedAt: now().toISOString() },
    hosts: { source: hostSummary(source, facts.source), target: hostSummary(target, facts.target) },
    container: {
      name: container ? container.Name.replace(/^\//, '') : settings.container,
      sourceId: container?.Id,
      targetId: status === 'succeeded' ? plan.targetContainerId : undefined,
      imageId: container?.Image,
      imageRef: plan.staged?.imageRef ?? container?.Config.Image,
    },
    checkpoint: {
      name: settings.checkpointName,
      bytes: dumped?.imagesBytes,
      transferredBytes: transferredBytes || undefined,
      streams,
    },
    timings: { phasesMs: timer.toRecord(), downtimeMs, durationMs: Math.round(clock() - runStart) },
    criu: dumped?.stats,
    error: failure ? metadataError(failure) : undefined,
  };
  return { status, metadata, error: failure };
}
