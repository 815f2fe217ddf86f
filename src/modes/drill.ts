import { initFirstRows } from '../engine/engine.js';
import { asMigrationError, errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { openHost, requireRoot } from '../host/host-factory.js';
import { reconnecting } from '../host/reconnecting.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { connectHosts } from '../phases/connect.js';
import type { RunContext } from '../phases/context.js';
import { createTargetContainer } from '../phases/stage.js';
import { type MovingVolume, restoreStoredVolumes, volumeFacts } from '../phases/volumes.js';
import { restoreFactsOf } from '../policy/criu-config.js';
import {
  anonymousVolumeMounts,
  type DrillRecord,
  type DrillVerdict,
  drillId,
  drillInspect,
  drillJournalKey,
  drillLeftoversScript,
  drillName,
  drillObstacles,
  drillVolumes,
  judgeDrillFailure,
  parseDrillLeftovers,
} from '../policy/drill.js';
import {
  type DrillFacts,
  METADATA_SCHEMA_VERSION,
  type MigrationMetadata,
  metadataError,
  type ResumedRun,
  type RunStatus,
} from '../report/metadata.js';
import { criuNotes, publish } from '../report/publish.js';
import { PhaseTimer } from '../report/timings.js';
import type { Runtime } from '../runtime.js';
import { type DrillSettings, describeLocation } from '../settings.js';
import { lockContainer, runOwner, settleUnfinished } from '../state/guard.js';
import { workDir } from '../state/host-records.js';
import type { RecoveryHosts } from '../state/recovery.js';
import type { StoredCheckpoint } from '../state/store.js';
import { writeDrillRecord } from '../state/store-listing.js';
import {
  checkStoredCpu,
  checkStoredFiles,
  findStoredCheckpoint,
  gateTarget,
  loadStoredImage,
  prepareVolumesForRestore,
  readRestoreInputs,
  restoreAndVerify,
  storeRunContext,
} from './restore.js';
import { earlyOutcome, failureOf, settleRun, startRunControl } from './run-control.js';

const COMMAND_TIMEOUT_MS = 120_000;
const LOG_TAIL_LINES = 5;

/** What the drill saw of its copy before removing it (never its log text: reports hold no container logs). */
interface DrillEvidence {
  name: string;
  containerId: string;
  /** The copy's first process, as docker top listed it. */
  firstProcess?: string;
  /** Lines the copy wrote to its log after the restore. */
  logLines: number;
  verifyMs?: number;
}

/**
 * Drill mode: proves a stored checkpoint restorable without touching the
 * service. The checkpoint is restored as a throw-away copy on the target (its
 * own name, network none, no ports, no restart policy, copies of its volumes),
 * verified like restore mode verifies, then removed with everything it made by
 * rolling its journal back, which a cancelled drill's post step or the next
 * drill also does. The result goes to the outputs, the summary and the store.
 */
export async function runDrillMode(settings: DrillSettings, runtime: Runtime): Promise<void> {
  const { log } = runtime;
  const started = new Date();
  const startedAt = performance.now();
  const timer = new PhaseTimer();
  const control = startRunControl(settings.timeoutMinutes, runtime);
  const id = drillId(runtime.newToken());
  const key = drillJournalKey(settings.container);
  const hosts: Host[] = [];
  let status: RunStatus = 'succeeded';
  let failure: MigrationError | undefined;
  let chosen: StoredCheckpoint | undefined;
  let evidence: DrillEvidence | undefined;
  let verdict: DrillVerdict = 'unknown';
  let reason = '';
  let recorded: boolean | undefined;
  let leftovers: string[] = [];
  let volumes: MovingVolume[] = [];
  let releaseLocks: (() => Promise<void>) | undefined;
  let resumed: ResumedRun | undefined;
  const addresses = { store: '', target: '' };
  try {
    const connected = await timer.time('connect', () =>
      connectHosts({ ...settings, source: settings.store.host, target: settings.target }, log),
    );
    hosts.push(connected.source, connected.target);
    await requireRoot(connected.target, settings.target, settings.sudo);
    addresses.store = connected.source.address;
    addresses.target = connected.target.address;
    const warn = (message: string): void => log.warning(message);
    const durable: RecoveryHosts = {
      source: reconnecting(connected.source, () =>
        openHost('source', settings.store.host, settings.ssh, settings.sudo, { warn }),
      ),
      target: reconnecting(connected.target, () =>
        openHost('target', settings.target, settings.ssh, settings.sudo, { warn }),
      ),
    };
    hosts.push(durable.source, durable.target);
    const owner = runOwner(runtime.env, started, runtime.newToken());
    // The drill's own key: never the original container's lock or journal, which it must not block.
    const locks = await lockContainer([durable.target], key, owner, log);
    releaseLocks = () => locks.release();
    resumed = await settleUnfinished(durable, key, log);

    const ctx = storeRunContext(settings, key, {
      connected,
      durable,
      owner,
      runtime,
      timer,
      signal: control.signal,
    });
    const { journal } = ctx;
    let caught: MigrationError | undefined;
    try {
      evidence = await drill(
        ctx,
        id,
        (found) => {
          chosen = found;
        },
        (prepared) => {
          volumes = prepared;
        },
      );
    } catch (error) {
      caught = failureOf(
        error,
        control.signal,
        'drill',
        'RESTORE_FAILED',
        'nothing to undo by hand: what the drill created was removed; the checkpoint in the store is untouched',
      );
      log.warning(caught.describe());
    }
    // Passed or not, the copy goes: the drill never commits, its whole journal is rolled back.
    const settled = await settleRun(journal, durable, log, caught);
    const remaining = await findLeftovers(durable.target, id, settings.checkpointName).catch(
      (error: unknown) => [`could not check what the drill left: ${errorMessage(error)}`],
    );
    leftovers = [...settled.problems, ...remaining];
    if (!caught && evidence) {
      verdict = 'true';
      status = leftovers.length === 0 ? 'succeeded' : 'failed';
      if (leftovers.length > 0) {
        failure = new MigrationError(
          'ROLLBACK_FAILED',
          'the checkpoint restored and stayed up, but the drill could not remove everything it made',
          {
            step: 'cleanup',
            host: describeHost(connected.target),
            detail: leftovers.join('\n'),
            remedy:
              'remove what the leftovers output lists on the drill host (everything the drill made carries the label org.criu-migrate.drill), or run the drill again: it settles the earlier one first',
          },
        );
      }
    } else if (caught) {
      ({ status } = settled);
      const judged = judgeDrillFailure(caught);
      const gone =
        judged.verdict === 'false' && chosen ? !(await stillStored(durable.source, chosen)) : false;
      verdict = gone ? 'unknown' : judged.verdict;
      reason = `${caught.code}: ${caught.message}`;
      if (gone) {
        reason = `the checkpoint left the store during the drill (retention of a newer checkpoint?); ${reason}`;
        failure = caught;
      } else if (judged.needsNetwork) {
        failure = new MigrationError(
          'DRILL_NEEDS_NETWORK',
          'the checkpoint could not be drilled without a network: its sockets need an address only its own network gave them',
          {
            step: 'restore',
            host: caught.host,
            detail: caught.detail ?? caught.message,
            remedy:
              'a drill never gives the copy a network (it could reach what the original reaches); prove this checkpoint with a restore on a spare host instead, or have the service bind to 0.0.0.0 instead of its own address',
            cause: caught,
          },
        );
      } else if (verdict === 'false') {
        failure = new MigrationError(
          'CHECKPOINT_NOT_RESTORABLE',
          `checkpoint ${chosen?.manifest.name ?? ''} is not restorable: ${caught.code}: ${caught.message}`,
          {
            step: caught.step,
            host: caught.host,
            detail: caught.detail,
            remedy:
              'do not count on this checkpoint: take a new checkpoint now and drill it; until then the newest checkpoint whose drill passed (mode: list) is the one to restore. The cause above says what failed',
            cause: caught,
          },
        );
      } else {
        failure = caught;
      }
    }
    if (chosen && verdict !== 'unknown') {
      const result: DrillRecord = {
        schema: 1,
        restorable: verdict === 'true',
        ...(reason ? { reason } : {}),
        at: new Date().toISOString(),
        host: connected.target.address,
        id,
        ...(evidence?.verifyMs === undefined ? {} : { stableMs: evidence.verifyMs }),
        ...(runtime.env.GITHUB_RUN_ID ? { githubRunId: runtime.env.GITHUB_RUN_ID } : {}),
      };
      recorded = await writeDrillRecord(durable.source, chosen.dir, result).catch((error: unknown) => {
        log.warning(`could not record the drill's result in the store: ${errorMessage(error)}`);
        return false;
      });
      if (recorded) log.info(`drill result recorded in the store: ${chosen.dir}/drill.json`);
      else log.warning(`drill result not recorded: ${chosen.dir} is no longer in the store`);
    }
  } catch (error) {
    failure = asMigrationError(error, 'COMMAND_FAILED');
    status = earlyOutcome(failure);
    reason = `${failure.code}: ${failure.message}`;
    log.warning(failure.describe());
  } finally {
    control.close();
  }
  try {
    timer.endAll();
    const manifest = chosen?.manifest;
    const drillFacts: DrillFacts = {
      restorable: verdict,
      ...(reason ? { reason } : {}),
      ...(evidence
        ? {
            copy: evidence.name,
            logLines: evidence.logLines,
            ...(evidence.firstProcess ? { firstProcess: evidence.firstProcess } : {}),
            ...(evidence.verifyMs === undefined ? {} : { watchedMs: evidence.verifyMs }),
          }
        : {}),
      ...(chosen ? { series: chosen.series } : {}),
      ...(recorded === undefined ? {} : { recorded }),
    };
    const metadata: MigrationMetadata = {
      schemaVersion: METADATA_SCHEMA_VERSION,
      run: { mode: 'drill', status, startedAt: started.toISOString(), finishedAt: new Date().toISOString() },
      hosts: {
        source: { address: addresses.store || describeLocation(settings.store.host) },
        target: { address: addresses.target || describeLocation(settings.target) },
      },
      container: {
        name: settings.container,
        sourceId: manifest?.container.id,
        imageId: manifest?.container.imageId,
        imageRef: manifest?.container.imageRef,
      },
      checkpoint: {
        name: manifest?.name ?? settings.restoreFrom ?? settings.checkpointName,
        bytes: manifest ? manifest.files.reduce((sum, file) => sum + file.bytes, 0) : undefined,
        streams: {},
      },
      timings: { phasesMs: timer.toRecord(), durationMs: Math.round(performance.now() - startedAt) },
      ...(volumes.length > 0 ? { volumes: volumeFacts(volumes) } : {}),
      ...(leftovers.length > 0 ? { leftovers } : {}),
      drill: drillFacts,
      error: failure ? metadataError(failure) : undefined,
      resumed,
    };
    await publish({
      ...settings,
      metadata,
      notes: criuNotes(failure?.cause instanceof MigrationError ? failure.cause : failure),
      env: runtime.env,
      log,
      outputs: {
        'checkpoint-name': manifest?.name ?? settings.restoreFrom ?? '',
        'checkpoint-path': chosen?.dir ?? '',
        series: chosen?.series ?? '',
        'checkpoint-bytes': metadata.checkpoint.bytes,
        restorable: verdict,
        'restorable-reason': reason,
        'drill-container': evidence?.name ?? '',
        leftovers: leftovers.join('\n'),
      },
    });
    if (failure) runtime.fail(failure);
    else
      log.info(
        `drill passed: checkpoint ${manifest?.name} restores on ${addresses.target}; the copy was removed`,
      );
  } finally {
    await releaseLocks?.().catch(() => {});
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}

/** The checkpoint's manifest is still in the store (retention may remove a checkpoint under a running drill). */
async function stillStored(store: Host, found: StoredCheckpoint): Promise<boolean> {
  const result = await store.run(`test -f ${shellQuote([`${found.dir}/manifest.json`])}`, {
    timeoutMs: 30_000,
  });
  return result.exitCode === 0;
}

/** What the drill left on its host after the rollback: containers and volumes with its label, its work files. */
async function findLeftovers(target: Host, id: string, checkpointName: string): Promise<string[]> {
  const result = await runChecked(target, drillLeftoversScript(id, [workDir(checkpointName)]), {
    step: 'cleanup',
    what: 'looking for what the drill left',
    options: { timeoutMs: COMMAND_TIMEOUT_MS },
  });
  return parseDrillLeftovers(result.stdout);
}

/** The drill itself: find, check and restore the checkpoint as the copy, verify it, read its evidence. */
async function drill(
  ctx: RunContext<DrillSettings>,
  id: string,
  onFound: (found: StoredCheckpoint) => void,
  onVolumes: (volumes: MovingVolume[]) => void,
): Promise<DrillEvidence> {
  const { log, timer } = ctx;
  const found = await findStoredCheckpoint(ctx);
  onFound(found);
  const { manifest, dir } = found;
  const { facts, codec, container, imageConfig, containerd } = await readRestoreInputs(ctx, dir);
  // Before any check that touches the target: a checkpoint that cannot be drilled in isolation says so.
  const obstacles = drillObstacles(container, manifest.volumes ?? []);
  const first = obstacles[0];
  if (first) {
    throw new MigrationError(
      first.errorCode,
      `checkpoint ${manifest.name} cannot be drilled without touching what the original uses: ${first.problem}`,
      {
        step: 'preflight',
        detail: obstacles.map((obstacle) => `${obstacle.errorCode}: ${obstacle.problem}`).join('\n'),
        remedy:
          first.errorCode === 'DRILL_NEEDS_NETWORK'
            ? 'prove this checkpoint with a restore on a spare host instead; a drill never gives the copy a network'
            : 'keep the data in named local volumes (they are stored with the checkpoint and drilled as copies), or prove this checkpoint with a restore on a spare host',
      },
    );
  }
  const inventory = await checkStoredFiles(ctx, found);
  const identity = { id, checkpoint: manifest.name };
  const copy = drillInspect(container, identity);
  const name = drillName(container.Name.replace(/^\//, ''), id);
  log.info(
    `drill ${id}: the copy is ${name} on ${describeHost(ctx.target)}: network none, no published ports, restart policy no, volumes as copies`,
  );
  if (await ctx.targetDocker.inspectContainer(name, 'drill')) {
    throw new MigrationError('TARGET_NAME_TAKEN', `the drill host already has a container named ${name}`, {
      step: 'drill',
      host: describeHost(ctx.target),
      remedy: `run the drill again (each drill picks a new name), or remove ${name} if it is a leftover`,
    });
  }
  // The copy has no network: the gate judges its network, not the original's.
  await gateTarget(ctx, facts, manifest, {
    mode: 'none',
    app: container.Name.replace(/^\//, ''),
    holderAllowed: false,
  });
  await checkStoredCpu(ctx, dir);
  const imageRef = await loadStoredImage(ctx, manifest, codec);
  const dockerRoot = facts.docker.rootDir ?? '/var/lib/docker';
  const stored = drillVolumes(manifest.volumes ?? [], identity);
  const volumes =
    stored.length > 0
      ? await log.group('Volumes: throw-away copies on the drill host', () =>
          timer.time('volumes', () => prepareVolumesForRestore(ctx, copy, stored)),
        )
      : [];
  onVolumes(volumes);
  // An image VOLUME would get an anonymous volume that removing the container leaves: a named, journalled one instead.
  for (const mount of anonymousVolumeMounts(container, id)) {
    await ctx.journal.around({ kind: 'volume-created', name: mount.name }, 'target', () =>
      runChecked(
        ctx.target,
        shellQuote(['docker', 'volume', 'create', '--label', `${mount.label}`, mount.name]),
        {
          step: 'volumes',
          what: `creating volume ${mount.name} for ${mount.destination}`,
          code: 'VOLUME_TRANSFER_FAILED',
        },
      ),
    );
  }
  const created = await createTargetContainer(ctx, copy, imageRef, imageConfig, dockerRoot, {
    restoreFacts: restoreFactsOf(facts.docker),
    ...(manifest.dump?.tcpEstablished ? { tcpEstablished: true } : {}),
  });
  if (volumes.length > 0) {
    await log.group('Volumes: contents from the store', () =>
      timer.time('volume-frozen', () => restoreStoredVolumes(ctx, volumes, stored, dir, codec)),
    );
  }
  await restoreAndVerify(ctx, found, created, {
    containerd,
    codec,
    inventorySha256: inventory.sha256,
    dockerRoot,
  });
  const [logs, table] = await Promise.all([
    ctx.targetDocker.logs(created.targetContainerId, 'drill').catch(() => ''),
    ctx.targetDocker.processTable(created.targetContainerId, 'drill').catch(() => []),
  ]);
  const lines = logs.trimEnd() === '' ? [] : logs.trimEnd().split('\n');
  const firstProcess = initFirstRows(table)[0]?.args;
  // In the step's log only, as verify does on a failure: the artifact and summary never hold container logs.
  log.info(
    `drill ${id}: ${name} ran and stayed up (first process: ${firstProcess ?? 'unknown'}); its last log lines:\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`,
  );
  const verifyMs = timer.toRecord().verify;
  return {
    name,
    containerId: created.targetContainerId,
    logLines: lines.length,
    ...(firstProcess ? { firstProcess } : {}),
    ...(verifyMs === undefined ? {} : { verifyMs: Math.round(verifyMs) }),
  };
}
