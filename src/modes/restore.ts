import { holderNeeds } from '../engine/docker/create-args.js';
import { type ContainerInspect, parseContainerInspect, parseImageInspect } from '../engine/docker/inspect.js';
import { type HolderNeeds, holderName } from '../engine/docker/net-holder.js';
import type { ContainerdTmp, RestorePath } from '../engine/docker/staged-pages.js';
import { allSettledOrThrow, errorMessage, MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { StreamRoutes, streamVia } from '../host/stream-routes.js';
import type { RunContext } from '../phases/context.js';
import {
  leaveRoute,
  type OpenRoute,
  planRoute,
  type RoutePlan,
  routeFacts,
  takeRoute,
} from '../phases/direct-route.js';
import { formatCheck } from '../phases/preflight.js';
import { prepareRestore, restore } from '../phases/restore.js';
import { settleRestoreConfig } from '../phases/restore-config.js';
import { type CreatedTarget, createHolder, createTargetContainer } from '../phases/stage.js';
import {
  LAYER_TAR,
  layerReceiveCommand,
  negotiateCodec,
  probeContainerdTmp,
  receiveCheckpoint,
  TAR_RECORD,
} from '../phases/transfer.js';
import { verify } from '../phases/verify.js';
import {
  type MovingVolume,
  prepareTargetVolumes,
  restoreStoredVolumes,
  volumeFacts,
} from '../phases/volumes.js';
import { blocking, type Check, cgroupVersionCheck, evaluateCompatibility } from '../policy/compatibility.js';
import { type Codec, parseSample, sampleFilesScript, streamCodec, withCodec } from '../policy/compression.js';
import { restoreFactsOf } from '../policy/criu-config.js';
import { inspectShapeProblems, manifestShapeProblems } from '../policy/inspect-shape.js';
import {
  decideRestoreRoute,
  isNetworkHolder,
  type NetworkRoute,
  sameHolderNetwork,
} from '../policy/network-route.js';
import {
  evaluateVolumes,
  parseVolumeProbes,
  planVolumes,
  type VolumeFacts,
  volumeProbeScript,
} from '../policy/volumes.js';
import { gatherHostFacts, type HostFacts } from '../probe/facts.js';
import { type MigrationMetadata, restorePathFacts } from '../report/metadata.js';
import type { Runtime } from '../runtime.js';
import type { DrillSettings, RestoreSettings } from '../settings.js';
import { PRIVATE, workDir } from '../state/host-records.js';
import { describeSeries, resolveCheckpoint, writeSeries } from '../state/series.js';
import {
  type CheckpointManifest,
  imagePath,
  listStoredCheckpoints,
  type StoredCheckpoint,
  type StoredConfig,
  type StoredFile,
  type StoredVolume,
  seriesOfContainer,
} from '../state/store.js';
import type { UnitHooks } from './migrate/unit-coordinator.js';
import { runMetadata, runSession, type SessionDeps } from './session.js';

const COMMAND_TIMEOUT_MS = 120_000;

/**
 * Restore mode: bring a stored checkpoint back as a running container on the
 * target, without its original host. Every file is checked against the
 * manifest before the target is touched; what the run creates is journalled
 * and removed again if the restore or its verification fails. The run's
 * lifecycle is session.ts's: locked on the target, journalled on both hosts.
 */
export async function runRestoreMode(
  settings: RestoreSettings,
  runtime: Runtime,
  deps: Omit<SessionDeps, 'runtime'> = {},
): Promise<void> {
  const { log } = runtime;
  let manifest: CheckpointManifest | undefined;
  let chosen: StoredCheckpoint | undefined;
  let volumes: MovingVolume[] = [];
  const streams = new StreamRoutes();
  let route: { plan: RoutePlan; opened: boolean } | undefined;
  type Restored = Awaited<ReturnType<typeof restoreFromStore>>;
  await runSession<RestoreSettings, Restored>(
    {
      settings,
      record: { sourceAfter: 'stop', retireSource: false },
      failure: {
        step: 'restore',
        code: 'RESTORE_FAILED',
        remedy:
          'nothing to undo by hand: what the run created on the target was removed; the checkpoint in the store is untouched',
      },
      work: (session) =>
        restoreFromStore(
          { ...session.ctx, streams },
          (found) => {
            chosen = found;
            manifest = found.manifest;
          },
          (prepared) => {
            volumes = prepared;
          },
          undefined,
          (plan, opened) => {
            route = { plan, opened };
          },
        ),
      afterSettle: async (session, settled) => {
        const targetId = settled.result?.targetContainerId;
        if (settled.status !== 'succeeded' || !targetId || !manifest) return {};
        // The restored container continues the checkpoint's series: its next checkpoint joins it.
        const series = manifest.series ?? seriesOfContainer(manifest.container.id);
        await writeSeries(session.durable.target, {
          series,
          containerId: targetId,
          from: manifest.container.id,
          via: 'restore',
          at: new Date().toISOString(),
        }).catch((error: unknown) =>
          log.warning(`could not record series ${series} for the restored container: ${errorMessage(error)}`),
        );
        return {};
      },
      report: (end) => {
        const restorePath = end.result?.restorePath;
        const metadata = runMetadata('restore', end, {
          container: {
            ...storedContainerFacts(settings, manifest),
            targetId: end.status === 'succeeded' ? end.result?.targetContainerId : undefined,
          },
          checkpoint: {
            ...storedCheckpointFacts(settings, manifest),
            ...(restorePath ? restorePathFacts(restorePath) : {}),
          },
          ...(volumes.length > 0 ? { volumes: volumeFacts(volumes) } : {}),
          ...(route ? { route: routeFacts(settings.route, route.plan, route.opened, streams) } : {}),
        });
        return {
          metadata,
          outputs: {
            ...storedOutputs(settings, chosen),
            'target-container-id': metadata.container.targetId ?? '',
          },
        };
      },
      success: (end) =>
        `restored ${settings.container} from ${manifest?.name} on ${end.addresses.target} in ${Math.round(end.result?.restoreMs ?? 0)} ms`,
    },
    { runtime, ...deps },
  );
}

/** Settings of the modes that bring a stored checkpoint back (restore, drill). */
export type FromStoreSettings = RestoreSettings | DrillSettings;

/** The container a stored checkpoint was taken of, for a restore's or drill's metadata. */
export function storedContainerFacts(
  settings: FromStoreSettings,
  manifest: CheckpointManifest | undefined,
): MigrationMetadata['container'] {
  return {
    name: settings.container,
    sourceId: manifest?.container.id,
    imageId: manifest?.container.imageId,
    imageRef: manifest?.container.imageRef,
  };
}

/** The stored checkpoint a restore or drill used (or was asked for), for its metadata. */
export function storedCheckpointFacts(
  settings: FromStoreSettings,
  manifest: CheckpointManifest | undefined,
): MigrationMetadata['checkpoint'] {
  return {
    name: manifest?.name ?? settings.restoreFrom ?? settings.checkpointName,
    bytes: manifest ? manifest.files.reduce((sum, file) => sum + file.bytes, 0) : undefined,
    streams: {},
  };
}

/** The outputs that name the stored checkpoint a restore or drill used. */
export function storedOutputs(
  settings: FromStoreSettings,
  chosen: StoredCheckpoint | undefined,
): Record<string, string | number | undefined> {
  const manifest = chosen?.manifest;
  return {
    'checkpoint-name': manifest?.name ?? settings.restoreFrom ?? '',
    'checkpoint-path': chosen?.dir ?? '',
    series: chosen?.series ?? '',
    'checkpoint-bytes': storedCheckpointFacts(settings, manifest).bytes,
  };
}

/** How a restore or drill tells its report the route out of the store: planned, then opened or not. */
export type OnRoute = (plan: RoutePlan, opened: boolean) => void;

/**
 * The route from the store host to the host that restores, asked of the store host before
 * anything is touched (route: direct that cannot be taken is refused here).
 */
export async function planStoreRoute(
  ctx: RunContext<FromStoreSettings>,
  receiver: string,
  onRoute: OnRoute,
): Promise<RoutePlan> {
  const { settings } = ctx;
  const plan = await planRoute(
    ctx.source,
    {
      route: settings.route,
      ssh: settings.ssh,
      source: settings.store.host,
      target: settings.target,
      ends: { from: 'the store host', to: receiver },
    },
    ctx.log,
  );
  onRoute(plan, false);
  return plan;
}

/** Opens the planned route out of the store (journalled); restoreAndVerify closes it after the last stream. */
export async function takeStoreRoute(
  ctx: RunContext<FromStoreSettings>,
  plan: RoutePlan,
  onRoute: OnRoute,
): Promise<OpenRoute | undefined> {
  const opened = await takeRoute(ctx, plan, `Direct route: the store host streams to ${plan.ends.to} itself`);
  onRoute(plan, opened !== undefined);
  return opened;
}

/**
 * Finds, checks and restores the checkpoint; journalled; returns once the restored container is
 * verified. A member of a compose unit (`unit`) restores once the members it depends on are
 * restored, and commits only when every member is verified.
 */
export async function restoreFromStore(
  given: RunContext<RestoreSettings>,
  onFound: (found: StoredCheckpoint) => void,
  onVolumes: (volumes: MovingVolume[]) => void,
  unit?: UnitHooks,
  onRoute: OnRoute = () => {},
): Promise<{ targetContainerId: string; restoreMs: number; restorePath: RestorePath }> {
  // A caller without a router (a unit's member) still streams host to host when it can.
  const ctx: RunContext<RestoreSettings> = given.streams ? given : { ...given, streams: new StreamRoutes() };
  const { settings, log, timer } = ctx;
  const found = await findStoredCheckpoint(ctx);
  const manifest = found.manifest;
  onFound(found);
  const dir = found.dir;
  const inventory = await checkStoredFiles(ctx, found);
  const { facts, codec, container, imageConfig, containerd, sourceHolder } = await readRestoreInputs(
    ctx,
    dir,
  );
  const name = container.Name.replace(/^\//, '');
  const existing = await ctx.targetDocker.inspectContainer(name, 'restore');
  if (existing) {
    // A running one may be the service itself: never replaced; a stopped one only when asked.
    const running = existing.State.Running || existing.State.Paused || existing.State.Restarting;
    if (running || !settings.replace) {
      throw new MigrationError(
        'TARGET_NAME_TAKEN',
        `the target already has a container named ${name} (${running ? 'running' : existing.State.Status})`,
        {
          step: 'restore',
          host: describeHost(ctx.target),
          remedy: running
            ? `stop it first if the checkpoint should replace it (docker stop ${name}), then run again with replace: true`
            : `set replace: true to replace it once the restore has succeeded, or remove it yourself (docker rm ${name})`,
        },
      );
    }
  }
  const gate = await gateTarget(ctx, facts, manifest, {
    mode: container.HostConfig.NetworkMode || 'default',
    app: name,
    ...(existing ? { existing } : {}),
    holderAllowed: settings.networkHolder,
  });
  const routePlan = await planStoreRoute(ctx, 'the target', onRoute);
  const route = await takeStoreRoute(ctx, routePlan, onRoute);
  await checkStoredCpu(ctx, dir);
  const imageRef = await loadStoredImage(ctx, manifest, codec);
  const dockerRoot = facts.docker.rootDir ?? '/var/lib/docker';
  // Before the container is created there, or docker create would make them empty.
  const storedVolumes = manifest.volumes ?? [];
  const volumes =
    storedVolumes.length > 0
      ? await log.group('Volumes: prepare them on the target', () =>
          timer.time('volumes', () => prepareVolumesForRestore(ctx, container, storedVolumes)),
        )
      : [];
  onVolumes(volumes);
  if (existing) {
    // Every check passed: the namesake only steps aside; removed at the commit, put back by a rollback.
    const aside = `${name}-replaced-${settings.checkpointName}`.slice(0, 200);
    await ctx.journal.around(
      { kind: 'namesake-aside', containerId: existing.Id, name, aside },
      'target',
      () => ctx.targetDocker.rename(existing.Id, aside, 'restore'),
    );
    log.info(
      `replace: the stopped container ${name} (${existing.Id.slice(0, 12)}) is renamed ${aside} until the restore is verified`,
    );
  }
  // Through a holder: it owns the network on the target, the container joins its namespace.
  if (gate.reuseHolder)
    log.info(`network holder ${gate.reuseHolder} of the replaced container stays: the restored one joins it`);
  const holder =
    gate.route === 'holder'
      ? (gate.reuseHolder ??
        (await createHolder(
          ctx,
          container,
          {
            ...(sourceHolder ? { sourceHolder } : {}),
            ...(facts.kernel.arch ? { targetArch: facts.kernel.arch } : {}),
          },
          'restore',
        )))
      : undefined;
  const created = await createTargetContainer(ctx, container, imageRef, imageConfig, dockerRoot, {
    restoreFacts: restoreFactsOf(facts.docker),
    ...(holder ? { networkContainer: holder } : {}),
    ...(manifest.dump?.tcpEstablished ? { tcpEstablished: true } : {}),
  });
  if (volumes.length > 0) {
    await log.group('Volumes: contents from the store', () =>
      timer.time('volume-frozen', () => restoreStoredVolumes(ctx, volumes, storedVolumes, dir, codec)),
    );
  }
  await unit?.beforeRestore();
  const { restoreMs, restorePath } = await restoreAndVerify(ctx, found, created, {
    containerd,
    codec,
    inventorySha256: inventory.sha256,
    dockerRoot,
    ...(route ? { route } : {}),
  });
  unit?.restored();
  await settleRestoreConfig(ctx, created.restoreConfig);
  await unit?.allVerified();
  // A unit's member is past its unit's commit already: cancelled now, it still commits.
  await ctx.journal.around(
    { kind: 'committed', targetContainerId: created.targetContainerId },
    undefined,
    async () => {
      if (!unit) ctx.signal.throwIfAborted();
    },
  );
  return { targetContainerId: created.targetContainerId, restoreMs, restorePath };
}

/** The checkpoint the settings mean (named, in a series, or the newest), or a coded refusal listing what the store has. */
export async function findStoredCheckpoint(ctx: RunContext<FromStoreSettings>): Promise<StoredCheckpoint> {
  const { settings, log } = ctx;
  const storePath = settings.store.path;
  const inStore = await listStoredCheckpoints(ctx.source, storePath, settings.container);
  const resolved = resolveCheckpoint(inStore, { series: settings.series, name: settings.restoreFrom });
  if (resolved.kind === 'ambiguous') {
    throw new MigrationError(
      'SERIES_AMBIGUOUS',
      `${resolved.candidates.length} checkpoint series in the store are named ${settings.container}${settings.restoreFrom ? ` and hold a checkpoint ${settings.restoreFrom}` : ''}: different containers, maybe on different hosts`,
      {
        step: 'restore',
        host: describeHost(ctx.source),
        detail: resolved.candidates.map(describeSeries).join('\n'),
        remedy: `choose one with the series input (series: ${resolved.candidates[0]?.id ?? '<id>'})`,
      },
    );
  }
  if (resolved.kind === 'none') {
    const wanted = [
      settings.restoreFrom ? `checkpoint ${settings.restoreFrom}` : 'checkpoint',
      settings.series ? ` in series ${settings.series}` : '',
    ].join('');
    throw new MigrationError(
      'CHECKPOINT_NOT_FOUND',
      `the store has no complete ${wanted} of ${settings.container}`,
      {
        step: 'restore',
        host: describeHost(ctx.source),
        detail:
          resolved.known.length > 0
            ? resolved.known
                .map(
                  (series) =>
                    `${describeSeries(series)}: complete checkpoints: ${series.checkpoints.map((entry) => entry.manifest.name).join(', ')}`,
                )
                .join('\n')
            : undefined,
        remedy: `check store-host, store-path (${storePath}), container and series; take one with mode: checkpoint`,
      },
    );
  }
  for (const other of resolved.superseded) {
    log.info(
      `not ${describeSeries(other)}: a later series began on the same host, so that container was replaced`,
    );
  }
  const found = resolved.checkpoint;
  const manifest = found.manifest;
  const dir = found.dir;
  // Anyone who can write to the store writes these: checked before they become paths anywhere.
  refuseUnsafe(ctx, manifestShapeProblems(manifest, imagePath), `the manifest of ${dir}`);
  if (found.legacy)
    log.info(`checkpoint ${manifest.name} is stored at the layout from before series (${dir})`);
  log.info(
    `restoring checkpoint ${manifest.name} of series ${found.series} (taken ${manifest.createdAt} on ${manifest.source})`,
  );
  return found;
}

/** Every file as the manifest says, before anything touches the target; returns CRIU's inventory entry. */
export async function checkStoredFiles(
  ctx: RunContext<FromStoreSettings>,
  found: StoredCheckpoint,
): Promise<StoredFile> {
  const { manifest, dir } = found;
  const storePath = ctx.settings.store.path;
  const sums = [
    ...manifest.files.map((file) => `${file.sha256}  ${dir}/${file.path}`),
    `${manifest.image.sha256}  ${storePath}/${manifest.image.path}`,
  ];
  const checked = await ctx.source.run(`sha256sum -c --quiet`, {
    input: `${sums.join('\n')}\n`,
    timeoutMs: 30 * 60_000,
  });
  if (checked.exitCode !== 0) {
    throw new MigrationError(
      'CHECKSUM_MISMATCH',
      `checkpoint ${manifest.name} in the store does not match its manifest`,
      {
        step: 'restore',
        host: describeHost(ctx.source),
        detail: `${checked.stdout}${checked.stderr}`.trim(),
        remedy: 'restore an older checkpoint (checkpoint-name), or take a new one; the store copy is damaged',
      },
    );
  }
  const inventory = manifest.files.find((file) => file.path === 'criu/inventory.img');
  if (!inventory)
    throw new MigrationError('CHECKPOINT_NOT_FOUND', `checkpoint ${manifest.name} has no CRIU inventory`, {
      step: 'restore',
    });
  return inventory;
}

/** The target's facts, the stream codec, the stored configuration and containerd's unpack directory. */
export async function readRestoreInputs(ctx: RunContext<FromStoreSettings>, dir: string) {
  const [facts, codec, configText, containerd] = await Promise.all([
    gatherHostFacts(ctx.target),
    negotiateCodec(ctx),
    runChecked(ctx.source, `cat ${shellQuote([`${dir}/config.json`])}`, {
      step: 'restore',
      what: 'reading the stored configuration',
    }),
    probeContainerdTmp(ctx),
  ]);
  const stored = JSON.parse(configText.stdout) as StoredConfig;
  const container = parseContainerInspect(JSON.stringify([stored.container]));
  refuseUnsafe(ctx, inspectShapeProblems(container), `${dir}/config.json`);
  // The holder the container joined when it was checkpointed: the new holder takes its network.
  const sourceHolder = stored.holder ? parseContainerInspect(JSON.stringify([stored.holder])) : undefined;
  const imageConfig = parseImageInspect(JSON.stringify([stored.image])).Config;
  return { facts, codec, container, imageConfig, containerd, ...(sourceHolder ? { sourceHolder } : {}) };
}
/** The host rules of migrate's gate on the target, the network route and the cgroup version; throws the first blocking one. */
export async function gateTarget(
  ctx: RunContext<FromStoreSettings>,
  facts: HostFacts,
  manifest: CheckpointManifest,
  network: {
    mode: string;
    /** The container's name: the holder's is derived from it. */
    app: string;
    /** The stopped namesake a replace will set aside, whose holder may stay. */
    existing?: ContainerInspect;
    /** Whether this run may make a network holder (drills never do). */
    holderAllowed: boolean;
  },
): Promise<{ route?: NetworkRoute; reuseHolder?: string }> {
  const { settings, log } = ctx;
  // The host rules of migrate's gate, on the target (CRIU, its kernel and features, Docker).
  const checks = evaluateCompatibility(
    { source: facts, target: facts },
    { kernelPolicy: settings.kernelPolicy },
  ).filter((check) => check.host === 'target');
  // The manifest says which targets the dump can go to; the target's Docker and the opt-in decide.
  const route = decideRestoreRoute({
    networkMode: network.mode,
    ...(manifest.network ? { recorded: manifest.network.route } : {}),
    ...(facts.docker.serverVersion ? { targetDocker: facts.docker.serverVersion } : {}),
    ...(facts.kernel.arch ? { targetArch: facts.kernel.arch } : {}),
    holderAllowed: network.holderAllowed,
    app: network.app,
  });
  checks.push(route.check);
  const onTarget =
    route.route === 'holder'
      ? await holderOnTarget(ctx, network.app, network.existing, manifest.network?.holder)
      : undefined;
  if (onTarget) checks.push(onTarget.check);
  checks.push(storedCgroupCheck(manifest, facts.docker.cgroupVersion));
  for (const check of checks) {
    if (check.status === 'warn') log.warning(formatCheck(check));
    else log.info(formatCheck(check));
  }
  const stopping = blocking(checks, settings.strict);
  const first = stopping[0];
  if (first) {
    throw new MigrationError(
      first.code ?? 'PREFLIGHT_FAILED',
      `the target cannot restore: ${first.name}: ${first.observed}`,
      {
        step: 'preflight',
        host: describeHost(ctx.target),
        detail: stopping.map(formatCheck).join('\n'),
        remedy: first.remedy,
      },
    );
  }
  if (manifest.versions.kernel && facts.kernel.release && manifest.versions.kernel !== facts.kernel.release) {
    log.warning(
      `the checkpoint was taken on kernel ${manifest.versions.kernel}; the target runs ${facts.kernel.release}`,
    );
  }
  return {
    ...(route.route ? { route: route.route } : {}),
    ...(onTarget?.reuse ? { reuseHolder: onTarget.reuse } : {}),
  };
}

/** The CPU the checkpoint was taken on, checked by the target's CRIU (in the run's work directory, journalled). */
export async function checkStoredCpu(ctx: RunContext<FromStoreSettings>, dir: string): Promise<void> {
  const { settings, log } = ctx;
  const work = workDir(settings);
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [work] }, 'target');
  await streamVia(
    ctx.streams,
    ctx.source,
    shellQuote(['tar', '-C', dir, '-cf', '-', 'cpu']),
    ctx.target,
    `${PRIVATE} mkdir -p ${shellQuote([work])} && ${shellQuote(['tar', '-C', work, '--no-same-permissions', '-xf', '-'])}`,
    { label: 'cpu description', step: 'restore', log },
  );
  const cpu = await ctx.target.run(`criu cpuinfo check -D ${shellQuote([`${work}/cpu`])}`);
  if (cpu.exitCode !== 0) {
    throw new MigrationError(
      'CPU_INCOMPATIBLE',
      "the target's CPU lacks features the checkpoint's processes use",
      {
        step: 'restore',
        host: describeHost(ctx.target),
        detail: `${cpu.stdout}${cpu.stderr}`.trim(),
        remedy: 'restore on a host with the same or a newer CPU model',
      },
    );
  }
}

/** The image, when the target lacks it: from the store, once per image ID (journalled); returns the reference to create from. */
export async function loadStoredImage(
  ctx: RunContext<FromStoreSettings>,
  manifest: CheckpointManifest,
  codec: Codec,
): Promise<string> {
  const { log, timer } = ctx;
  const storePath = ctx.settings.store.path;
  const imageId = manifest.container.imageId;
  if ((await ctx.targetDocker.imageId(imageId)) !== imageId) {
    const load = withCodec(
      codec,
      shellQuote(['cat', `${storePath}/${manifest.image.path}`]),
      ctx.targetDocker.loadImageCommand(),
    );
    await ctx.journal.around({ kind: 'image-copied', imageId }, 'target', () =>
      timer.time('stage', () =>
        streamVia(ctx.streams, ctx.source, load.produce, ctx.target, load.consume, {
          label: 'image',
          step: 'restore',
          log,
          code: 'IMAGE_TRANSFER_FAILED',
        }),
      ),
    );
  }
  const imageRef = manifest.container.imageRef;
  if (imageRef !== imageId && (await ctx.targetDocker.imageId(imageRef)) !== imageId) {
    await ctx.targetDocker.tagImage(imageId, imageRef, 'restore');
  }
  return imageRef;
}

/**
 * The stored CRIU images and writable layer into the created container, then
 * docker start --checkpoint and verify: returns once the container is verified.
 */
export async function restoreAndVerify(
  ctx: RunContext<FromStoreSettings>,
  found: StoredCheckpoint,
  created: CreatedTarget,
  inputs: {
    containerd: ContainerdTmp;
    codec: Codec;
    inventorySha256: string;
    dockerRoot: string;
    /** The direct route out of the store, closed once the last stream is in. */
    route?: OpenRoute;
  },
): Promise<{ restoreMs: number; restorePath: RestorePath }> {
  const { settings, log, timer } = ctx;
  const { manifest, dir } = found;
  const { containerd, codec, inventorySha256: inventory, dockerRoot } = inputs;
  const unpackDir = containerd.found ? containerd.dir : undefined;
  const [receiving, restoring] = await allSettledOrThrow([
    receiveCheckpoint(ctx, containerd, created.targetCheckpointDir),
    prepareRestore(ctx, created, { inventorySha256: inventory }, dockerRoot, unpackDir),
  ]);
  // Stored pages are raw: a sample says whether compressing them on the way is worth it.
  const sampled = await ctx.source.run(
    `cd ${shellQuote([`${dir}/criu`])} && { ${sampleFilesScript(codec, "'pages-'*.img")}; }`,
    { timeoutMs: 60_000 },
  );
  const imagesCodec = streamCodec(settings.compression, codec, parseSample(sampled.stdout));
  log.info(
    `checkpoint stream: ${imagesCodec.codec === 'none' ? 'raw' : imagesCodec.codec} (${imagesCodec.reason})`,
  );
  const images = withCodec(
    imagesCodec.codec,
    shellQuote(['tar', '-C', `${dir}/criu`, ...TAR_RECORD, '-cf', '-', '.']),
    receiving.consume,
  );
  // Checkpoints with series store the layer in passes, extracted in order; older ones one layer.tar.
  const layerPasses = (manifest.layer?.archives ?? ['layer.tar']).map((archive) =>
    withCodec(
      codec,
      shellQuote(['cat', `${dir}/${archive}`]),
      manifest.layer
        ? layerReceiveCommand(created.targetUpperDir)
        : shellQuote(['tar', '-C', created.targetUpperDir, ...LAYER_TAR, '-xpf', '-']),
    ),
  );
  const sendLayer = async () => {
    for (const [i, layer] of layerPasses.entries()) {
      await streamVia(ctx.streams, ctx.source, layer.produce, ctx.target, layer.consume, {
        label: layerPasses.length > 1 ? `writable layer (${i + 1}/${layerPasses.length})` : 'writable layer',
        step: 'transfer',
        log,
      });
    }
  };
  let restorePath: RestorePath;
  try {
    restorePath = await log.group('Transfer: checkpoint and writable layer from the store', () =>
      timer.time('transfer', async () => {
        const [checkpoint] = await allSettledOrThrow([
          streamVia(ctx.streams, ctx.source, images.produce, ctx.target, images.consume, {
            label: 'checkpoint',
            step: 'transfer',
            log,
          }),
          sendLayer(),
        ]);
        return receiving.restorePath(checkpoint.notes);
      }),
    );
  } catch (error) {
    await restoring.follower.stop(false).catch(() => '');
    throw error;
  }
  // Nothing more leaves the store: the run's key goes before the restore (the journal removes it otherwise).
  await leaveRoute(ctx, inputs.route);
  const restored = await log.group('Restore on the target', () =>
    timer.time('restore', () => restore(ctx, created, restoring)),
  );
  await log.group('Verify the restored container', () =>
    timer.time('verify', () => verify(ctx, created, undefined)),
  );
  return { restoreMs: restored.restoreMs, restorePath };
}

/**
 * The holder's name on the target: free, or (replace: true) the running holder the stopped
 * namesake joins, when it owns the network the checkpoint needs: the restored container joins
 * it and it stays when the namesake goes. Anything else stops the restore at the gate.
 */
async function holderOnTarget(
  ctx: RunContext<FromStoreSettings>,
  app: string,
  namesake: ContainerInspect | undefined,
  wanted: HolderNeeds | undefined,
): Promise<{ check: Check; reuse?: string }> {
  const name = holderName(app);
  const taken = await ctx.targetDocker.inspectContainer(name, 'preflight');
  const check: Check = {
    host: 'target',
    name: 'network holder name',
    status: 'pass',
    observed: `${name} is free`,
    expected: `no container named ${name} on the target, or with replace: true the running holder of the stopped ${app} with the network the checkpoint needs`,
  };
  if (!taken) return { check };
  const mode = namesake?.HostConfig.NetworkMode ?? '';
  // A namesake is only passed on with replace: true (the restore refused it otherwise).
  const joinedByNamesake =
    (mode === `container:${taken.Id}` || mode === `container:${name}`) &&
    isNetworkHolder(taken, app) &&
    taken.State.Running;
  if (joinedByNamesake && namesake && wanted) {
    const present = holderNeeds(taken, namesake);
    if (sameHolderNetwork(present, wanted, [app, name])) {
      return {
        check: {
          ...check,
          observed: `${name} runs for the stopped ${app} being replaced and owns the network this checkpoint needs: the restored container joins it`,
        },
        reuse: name,
      };
    }
    return {
      check: {
        ...check,
        status: 'fail',
        observed: `${name}, the holder of the stopped ${app}, owns another network than the checkpoint needs (${present.network} ${present.ports.join(' ')} against ${wanted.network} ${wanted.ports.join(' ')})`,
        remedy: `remove the stopped ${app} and then its holder on the target (docker rm ${app} && docker rm -f ${name}) if they may go, or restore onto another host`,
        code: 'NETWORK_HOLDER_FAILED',
      },
    };
  }
  return {
    check: {
      ...check,
      status: 'fail',
      observed: `a container named ${name} exists (${taken.State.Status})`,
      remedy: `remove it on the target (docker rm -f ${name}) if it is a leftover, or restore onto another host: the network holder of ${app} takes that name`,
      code: 'NETWORK_HOLDER_FAILED',
    },
  };
}

/** UNSAFE_VALUE, before anything is touched, when a stored value has a shape the action will not use. */
function refuseUnsafe(ctx: RunContext<FromStoreSettings>, problems: readonly string[], where: string): void {
  if (problems.length === 0) return;
  throw new MigrationError('UNSAFE_VALUE', `${where} in the store holds values the action will not use`, {
    step: 'restore',
    host: describeHost(ctx.source),
    detail: problems.join('\n'),
    remedy:
      'the store was written by something other than this action, or changed since: restore another checkpoint (checkpoint-name), and find out who can write to the store',
  });
}

/** The checkpoint's cgroup version against the target's; a checkpoint from before it was recorded only warns. */
function storedCgroupCheck(manifest: CheckpointManifest, target: string | undefined): Check {
  const recorded = cgroupVersionCheck(manifest.versions.cgroupVersion, target, 'checkpoint');
  if (recorded) return recorded;
  return {
    host: 'both',
    name: 'cgroup versions',
    status: 'warn',
    observed: `checkpoint cgroup version not recorded (taken before it was), target cgroup v${target ?? 'unknown'}`,
    expected: 'the same cgroup version as the host the checkpoint was taken on',
    remedy:
      'make sure the target runs the cgroup version of the host the checkpoint was taken on: a checkpoint does not restore across cgroup versions',
    code: 'FACT_UNREADABLE',
  };
}

/**
 * The target's side of the stored volumes, as migrate's gate judges it: a
 * volume of the same name with other contents is refused unless
 * volume-replace; then each is created (or its contents set aside), journalled.
 */
export async function prepareVolumesForRestore(
  ctx: RunContext<FromStoreSettings>,
  container: ContainerInspect,
  stored: readonly StoredVolume[],
): Promise<MovingVolume[]> {
  const probed = await ctx.target.run(volumeProbeScript(stored.map((volume) => volume.name)), {
    timeoutMs: COMMAND_TIMEOUT_MS,
  });
  const facts: VolumeFacts = {
    source: stored.map((volume) => ({
      name: volume.name,
      info: volume.info,
      users: [],
      ...(volume.sizeBytes === undefined ? {} : { sizeBytes: volume.sizeBytes }),
      hasContent: true,
    })),
    target: probed.exitCode === 0 ? parseVolumeProbes(probed.stdout) : [],
    unreadable: probed.exitCode === 0 ? {} : { target: probed.stderr.trim() || `exit ${probed.exitCode}` },
  };
  const checks = evaluateVolumes(container, facts, {
    replace: ctx.settings.volumeReplace,
    useTargetOptions: ctx.settings.volumeUseTargetOptions,
  });
  for (const check of checks) {
    if (check.status === 'warn') ctx.log.warning(formatCheck(check));
    else ctx.log.info(formatCheck(check));
  }
  const stopping = blocking(checks, ctx.settings.strict);
  const first = stopping[0];
  if (first) {
    throw new MigrationError(
      first.code ?? 'PREFLIGHT_FAILED',
      `the target cannot take ${first.name}: ${first.observed}`,
      {
        step: 'preflight',
        host: describeHost(ctx.target),
        detail: stopping.map(formatCheck).join('\n'),
        remedy: first.remedy,
      },
    );
  }
  return prepareTargetVolumes(ctx, planVolumes(container, facts));
}
