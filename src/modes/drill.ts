import { initFirstRows } from '../engine/engine.js';
import { errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { StreamRoutes } from '../host/stream-routes.js';
import type { RunContext } from '../phases/context.js';
import { type RoutePlan, routeFacts } from '../phases/direct-route.js';
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
import type { DrillFacts, RunStatus } from '../report/metadata.js';
import { criuNotes } from '../report/publish.js';
import type { Runtime } from '../runtime.js';
import type { DrillSettings } from '../settings.js';
import { type WorkKey, workDir } from '../state/host-records.js';
import type { StoredCheckpoint } from '../state/store.js';
import { writeDrillRecord } from '../state/store-listing.js';
import {
  checkStoredCpu,
  checkStoredFiles,
  findStoredCheckpoint,
  gateTarget,
  loadStoredImage,
  type OnRoute,
  planStoreRoute,
  prepareVolumesForRestore,
  readRestoreInputs,
  restoreAndVerify,
  storedCheckpointFacts,
  storedContainerFacts,
  storedOutputs,
  takeStoreRoute,
} from './restore.js';
import { runMetadata, runSession, type SessionDeps, type Settled } from './session.js';

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
export async function runDrillMode(
  given: DrillSettings,
  runtime: Runtime,
  deps: Omit<SessionDeps, 'runtime'> = {},
): Promise<void> {
  // The drill's own key: never the original container's lock or journal, which it must not block.
  const key = drillJournalKey(given.container);
  const settings: DrillSettings = { ...given, workKey: key };
  const { log } = runtime;
  const id = drillId(runtime.newToken());
  let chosen: StoredCheckpoint | undefined;
  let verdict: DrillVerdict = 'unknown';
  let reason = '';
  let recorded: boolean | undefined;
  let leftovers: string[] = [];
  let volumes: MovingVolume[] = [];
  const streams = new StreamRoutes();
  let route: { plan: RoutePlan; opened: boolean } | undefined;
  await runSession<DrillSettings, DrillEvidence>(
    {
      settings,
      key: async () => key,
      record: { sourceAfter: 'stop', retireSource: false },
      failure: {
        step: 'drill',
        code: 'RESTORE_FAILED',
        remedy:
          'nothing to undo by hand: what the drill created was removed; the checkpoint in the store is untouched',
      },
      work: (session) =>
        drill(
          { ...session.ctx, streams },
          id,
          (found) => {
            chosen = found;
          },
          (prepared) => {
            volumes = prepared;
          },
          (plan, opened) => {
            route = { plan, opened };
          },
        ),
      // Passed or not, the copy went: the drill never commits, its whole journal was rolled back.
      afterSettle: async (session, settled) => {
        const remaining = await findLeftovers(session.durable.target, id, settings).catch(
          (error: unknown) => [`could not check what the drill left: ${errorMessage(error)}`],
        );
        leftovers = [...settled.problems, ...remaining];
        const judged = await judgeDrill(session.durable, settled, leftovers, chosen);
        verdict = judged.verdict;
        reason = judged.reason;
        if (chosen && verdict !== 'unknown') {
          const result: DrillRecord = {
            schema: 1,
            restorable: verdict === 'true',
            ...(reason ? { reason } : {}),
            at: new Date().toISOString(),
            host: session.opened.target.address,
            id,
            ...(settled.result?.verifyMs === undefined ? {} : { stableMs: settled.result.verifyMs }),
            ...(runtime.env.GITHUB_RUN_ID ? { githubRunId: runtime.env.GITHUB_RUN_ID } : {}),
          };
          recorded = await writeDrillRecord(session.durable.source, chosen.dir, result).catch(
            (error: unknown) => {
              log.warning(`could not record the drill's result in the store: ${errorMessage(error)}`);
              return false;
            },
          );
          if (recorded) log.info(`drill result recorded in the store: ${chosen.dir}/drill.json`);
          else log.warning(`drill result not recorded: ${chosen.dir} is no longer in the store`);
        }
        return { status: judged.status, failure: judged.failure };
      },
      report: (end) => {
        if (!reason && end.failure) reason = `${end.failure.code}: ${end.failure.message}`;
        const _manifest = chosen?.manifest;
        const evidence = end.result;
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
        const failure = end.failure;
        return {
          metadata: runMetadata('drill', end, {
            container: storedContainerFacts(settings, chosen?.manifest),
            checkpoint: storedCheckpointFacts(settings, chosen?.manifest),
            ...(volumes.length > 0 ? { volumes: volumeFacts(volumes) } : {}),
            ...(leftovers.length > 0 ? { leftovers } : {}),
            ...(route ? { route: routeFacts(settings.route, route.plan, route.opened, streams) } : {}),
            drill: drillFacts,
          }),
          notes: criuNotes(failure?.cause instanceof MigrationError ? failure.cause : failure),
          outputs: {
            ...storedOutputs(settings, chosen),
            restorable: verdict,
            'restorable-reason': reason,
            'drill-container': evidence?.name ?? '',
            leftovers: leftovers.join('\n'),
          },
        };
      },
      success: (end) =>
        `drill passed: checkpoint ${chosen?.manifest.name} restores on ${end.addresses.target}; the copy was removed`,
    },
    { runtime, ...deps },
  );
}

/**
 * The drill's verdict from how its work and rollback ended: restorable when the copy came up,
 * not restorable when the restore itself failed on the checkpoint, unknown when the drill could
 * not tell (the checkpoint left the store, the copy needs a network).
 */
async function judgeDrill(
  hosts: { source: Host; target: Host },
  settled: Settled<DrillEvidence>,
  leftovers: readonly string[],
  chosen: StoredCheckpoint | undefined,
): Promise<{ verdict: DrillVerdict; reason: string; status: RunStatus; failure?: MigrationError }> {
  const caught = settled.failure;
  if (!caught && settled.result) {
    if (leftovers.length === 0) return { verdict: 'true', reason: '', status: 'succeeded' };
    return {
      verdict: 'true',
      reason: '',
      status: 'failed',
      failure: new MigrationError(
        'ROLLBACK_FAILED',
        'the checkpoint restored and stayed up, but the drill could not remove everything it made',
        {
          step: 'cleanup',
          host: describeHost(hosts.target),
          detail: leftovers.join('\n'),
          remedy:
            'remove what the leftovers output lists on the drill host (everything the drill made carries the label org.criu-migrate.drill), or run the drill again: it settles the earlier one first',
        },
      ),
    };
  }
  if (!caught) return { verdict: 'unknown', reason: '', status: settled.status };
  const judged = judgeDrillFailure(caught);
  const gone = judged.verdict === 'false' && chosen ? !(await stillStored(hosts.source, chosen)) : false;
  const verdict: DrillVerdict = gone ? 'unknown' : judged.verdict;
  const reason = `${caught.code}: ${caught.message}`;
  const status = settled.status;
  if (gone) {
    return {
      verdict,
      reason: `the checkpoint left the store during the drill (retention of a newer checkpoint?); ${reason}`,
      status,
      failure: caught,
    };
  }
  if (judged.needsNetwork) {
    return {
      verdict,
      reason,
      status,
      failure: new MigrationError(
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
      ),
    };
  }
  if (verdict === 'false') {
    return {
      verdict,
      reason,
      status,
      failure: new MigrationError(
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
      ),
    };
  }
  return { verdict, reason, status, failure: caught };
}

/** The checkpoint's manifest is still in the store (retention may remove a checkpoint under a running drill). */
async function stillStored(store: Host, found: StoredCheckpoint): Promise<boolean> {
  const result = await store.run(`test -f ${shellQuote([`${found.dir}/manifest.json`])}`, {
    timeoutMs: 30_000,
  });
  return result.exitCode === 0;
}

/** What the drill left on its host after the rollback: containers and volumes with its label, its work files. */
async function findLeftovers(target: Host, id: string, key: WorkKey): Promise<string[]> {
  const result = await runChecked(target, drillLeftoversScript(id, [workDir(key)]), {
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
  onRoute: OnRoute,
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
  const routePlan = await planStoreRoute(ctx, 'the drill host', onRoute);
  const route = await takeStoreRoute(ctx, routePlan, onRoute);
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
    ...(route ? { route } : {}),
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
