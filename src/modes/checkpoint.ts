import { holderNeeds } from '../engine/docker/create-args.js';
import { type ContainerInspect, containerName } from '../engine/docker/inspect.js';
import { mapped } from '../engine/engine.js';
import { allSettledOrThrow, errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { StreamRoutes, streamVia } from '../host/stream-routes.js';
import { freezeAndDump, measureCheckpoint, prepareCheckpoint } from '../phases/checkpoint.js';
import type { RunContext } from '../phases/context.js';
import { closeRoute, openRoute, planRoute, type RoutePlan, routeFacts } from '../phases/direct-route.js';
import { layerSendCommand, negotiateCodec } from '../phases/transfer.js';
import { prepareSnapshots, storeVolumes } from '../phases/volumes.js';
import { streamCodec, withCodec } from '../policy/compression.js';
import { ownHolder } from '../policy/gate.js';
import { inspectShapeProblems, shapeCheck, volumeShapeProblems } from '../policy/inspect-shape.js';
import { checkpointRoute, HOLDER_INPUT, type NetworkRoute } from '../policy/network-route.js';
import {
  movedVolumeNames,
  parseVolumeProbes,
  sourceVolumeCheck,
  volumeProbeScript,
} from '../policy/volumes.js';
import { gatherHostFacts } from '../probe/facts.js';
import type { VolumeFacts } from '../report/metadata.js';
import { criuNotes } from '../report/publish.js';
import type { Runtime } from '../runtime.js';
import type { CheckpointSettings } from '../settings.js';
import { lockSeries } from '../state/guard.js';
import { PRIVATE } from '../state/host-records.js';
import type { RunOwner } from '../state/journal.js';
import { readSeries, writeSeries } from '../state/series.js';
import {
  acquireDirLockScript,
  type CheckpointManifest,
  checkpointDir,
  digestFiles,
  IMAGE_REF_FILE,
  imagePath,
  imagesReferred,
  listStoredCheckpoints,
  type OpenFileCheck,
  partialDir,
  retentionPlan,
  type StoredConfig,
  type StoredVolume,
  seriesDir,
  underDirLock,
  unusedImages,
} from '../state/store.js';
import { proveLayer } from './checkpoint-proof.js';
import type { UnitHooks } from './migrate/unit-coordinator.js';
import { runMetadata, runSession, type SessionDeps } from './session.js';

const COMMAND_TIMEOUT_MS = 120_000;

/** The series the run writes into, and its lock (held until retention has run). */
export interface SeriesHeld {
  id: string;
  release(): Promise<void>;
}

/**
 * Checkpoint mode: freeze the container only for the dump (resumed before
 * anything is copied, unless leave-running is false), then write a complete,
 * self-contained checkpoint into the store under a temporary name and rename
 * it when every file is there and hashed. Retention runs after. The run's
 * lifecycle is session.ts's: the journal and lock live on the source only.
 */
export async function runCheckpointMode(
  settings: CheckpointSettings,
  runtime: Runtime,
  deps: Omit<SessionDeps, 'runtime'> = {},
): Promise<void> {
  const { log } = runtime;
  let manifest: CheckpointManifest | undefined;
  let frozenMs: number | undefined;
  let storedCheckpoints: string[] | undefined;
  let series: SeriesHeld | undefined;
  const streams = new StreamRoutes();
  let route: { plan: RoutePlan; opened: boolean } | undefined;
  // Store paths and retention go by the container's name, whether the input gave its name or ID.
  let named = settings;
  await runSession<CheckpointSettings, CheckpointManifest>(
    {
      settings,
      record: { sourceAfter: 'stop', retireSource: !settings.leaveRunning },
      failure: {
        step: 'checkpoint',
        code: 'CHECKPOINT_FAILED',
        remedy: 'nothing to undo by hand: the container was resumed and the partial checkpoint removed',
      },
      work: async (session) => {
        named = { ...settings, container: session.key };
        const ctx: RunContext<CheckpointSettings> = { ...session.ctx, settings: named, streams };
        manifest = await checkpointInto(
          ctx,
          session.owner,
          (ms) => {
            frozenMs = ms;
          },
          (held) => {
            series = held;
            session.defer(() => held.release());
          },
          (plan, opened) => {
            route = { plan, opened };
          },
        );
        return manifest;
      },
      afterSettle: async (session, settled) => {
        const seriesId = settled.result?.series;
        if (seriesId) {
          storedCheckpoints = await log.group('Retention', () =>
            applyRetention(session.ctx.target, named, seriesId, log),
          );
        }
        return {};
      },
      report: (end) => {
        const path = manifest
          ? checkpointDir(named.store.path, named.container, manifest.series ?? '', settings.checkpointName)
          : undefined;
        const metadata = runMetadata('checkpoint', end, {
          container: {
            name: named.container,
            sourceId: manifest?.container.id,
            imageId: manifest?.container.imageId,
            imageRef: manifest?.container.imageRef,
          },
          checkpoint: {
            name: settings.checkpointName,
            bytes: manifest ? manifest.files.reduce((sum, file) => sum + file.bytes, 0) : undefined,
            streams: {},
          },
          timings: { downtimeMs: frozenMs },
          storedCheckpoints,
          ...(manifest?.volumes ? { volumes: storedVolumeFacts(manifest.volumes) } : {}),
          ...(route ? { route: routeFacts(settings.route, route.plan, route.opened, streams) } : {}),
        });
        // The checkpoint's versions describe its source host.
        if (manifest) metadata.hosts.source = { ...metadata.hosts.source, ...manifest.versions };
        return {
          metadata,
          notes: [
            ...criuNotes(end.failure),
            ...(manifest ? [{ file: 'manifest.json', text: JSON.stringify(manifest, null, 2) }] : []),
          ],
          outputs: {
            'checkpoint-path': path ?? '',
            'checkpoint-bytes': metadata.checkpoint.bytes,
            'frozen-ms': frozenMs,
            series: manifest?.series ?? series?.id ?? '',
          },
        };
      },
      success: (end) =>
        `checkpoint ${settings.checkpointName} written to ${end.addresses.target}:${manifest ? checkpointDir(named.store.path, named.container, manifest.series ?? '', settings.checkpointName) : ''}; frozen for ${frozenMs} ms`,
    },
    { runtime, ...deps },
  );
}

/**
 * The work of one checkpoint, journalled; returns the manifest once the checkpoint is complete and
 * renamed. A member of a compose unit meets the others (`unit`) before its freeze, once paused, once
 * dumped and before its commit, so the unit's members are frozen and dumped together.
 */
export async function checkpointInto(
  ctx: RunContext<CheckpointSettings>,
  owner: RunOwner,
  onFrozen: (ms: number) => void,
  onSeries: (series: SeriesHeld) => void,
  onRoute: (plan: RoutePlan, opened: boolean) => void,
  unit?: UnitHooks,
): Promise<CheckpointManifest> {
  const { settings, log, timer } = ctx;
  const store = settings.store.path;
  const container = await ctx.sourceDocker.inspectContainer(settings.container, 'checkpoint');
  if (!container) {
    throw new MigrationError('CONTAINER_NOT_FOUND', `no container ${settings.container} on the source`, {
      step: 'checkpoint',
      host: describeHost(ctx.source),
      remedy: 'check the container input and the source host',
    });
  }
  if (!container.State.Running || container.State.Paused) {
    throw new MigrationError(
      'CONTAINER_NOT_RUNNING',
      `container ${settings.container} is ${container.State.Status}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        remedy: 'checkpoint a running container',
      },
    );
  }
  const upper = container.GraphDriver?.Data?.UpperDir;
  if (!upper) {
    throw new MigrationError('STORAGE_DRIVER_UNSUPPORTED', 'the container has no overlay2 upper directory', {
      step: 'checkpoint',
      host: describeHost(ctx.source),
      remedy: 'use the overlay2 storage driver',
    });
  }
  // These become paths on the store host and the source: refused before anything is touched.
  refuseUnsafe(ctx, inspectShapeProblems(container));
  const volumes = await volumesToStore(ctx, container);
  refuseUnsafe(
    ctx,
    volumes.flatMap((volume) => volumeShapeProblems(volume.name, volume.info)),
  );

  // Whether the source writes into the store itself: asked before anything changes (route: direct refuses here).
  const routePlan = await planRoute(
    ctx.source,
    {
      route: settings.route,
      ssh: settings.ssh,
      source: settings.source,
      target: settings.store.host,
      ends: { from: 'the source', to: 'the store host' },
    },
    log,
  );
  onRoute(routePlan, false);

  // The series: the container's own, whatever its name; one run writes into it at a time.
  const found = await readSeries(ctx.source, container.Id);
  if (!found.recorded) {
    await writeSeries(ctx.source, {
      series: found.series,
      containerId: container.Id,
      via: 'checkpoint',
      at: new Date().toISOString(),
    });
  }
  const series = found.series;
  const home = seriesDir(store, settings.container, series);
  await runChecked(ctx.target, `${PRIVATE} mkdir -p ${shellQuote([home, `${store}/images`])}`, {
    step: 'store',
    what: `preparing series ${series} in the store`,
  });
  const lock = await lockSeries(ctx.target, `${home}/.lock`, series, owner, log);
  onSeries({ id: series, release: () => lock.release() });
  log.info(
    `checkpoint series ${series} (${found.recorded ? 'recorded for this container' : 'started by this container'})`,
  );
  await adoptLegacyCheckpoints(ctx.target, store, settings.container, log);
  await writeSeriesRecord(ctx, home, series, container.Id);

  const final = checkpointDir(store, settings.container, series, settings.checkpointName);
  const exists = await ctx.target.run(`[ -e ${shellQuote([final])} ]`);
  if (exists.exitCode === 0) {
    throw new MigrationError(
      'INPUT_INVALID',
      `the store already has a checkpoint ${settings.checkpointName} in series ${series} of ${settings.container}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.target),
        remedy: 'choose another checkpoint-name, or leave it empty for <container>-<UTC timestamp>',
      },
    );
  }
  const [facts, imageInspect, codec] = await Promise.all([
    gatherHostFacts(ctx.source),
    ctx.sourceDocker.imageConfig(container.Image, 'checkpoint'),
    negotiateCodec(ctx),
  ]);
  const imageRef = container.Config.Image ?? container.Image;

  // The network route the checkpoint is made for: recorded in the manifest, decided by restore's gate.
  const { route, sourceHolder } = await networkRouteOf(ctx, container);
  // Before the freeze: work directory, CPU description, the store's partial directory.
  // Dumped for a holder: the container's own namespace stays out of the dump (one that joins a
  // holder already is runc's external namespace, which runc marks itself).
  const prepared = await prepareCheckpoint(ctx, container, {
    externalNetns: route === 'holder' && !sourceHolder,
  });
  const workRoot = prepared.imagesDir.replace(/\/images$/, '');
  const cpuDir = `${workRoot}/cpu`;
  await runChecked(
    ctx.source,
    `${PRIVATE} mkdir -p ${shellQuote([cpuDir])} && criu cpuinfo dump -D ${shellQuote([cpuDir])}`,
    {
      step: 'checkpoint',
      what: 'criu cpuinfo dump',
    },
  );
  const partial = partialDir(store, settings.container, series, settings.checkpointName);
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [partial] }, 'target');
  await runChecked(
    ctx.target,
    `${PRIVATE} rm -rf ${shellQuote([partial])} && mkdir -p ${shellQuote([`${partial}/layer`])}`,
    {
      step: 'checkpoint',
      what: `preparing ${partial} in the store`,
    },
  );
  // Named before it is looked for, under the images lock: collection by another run keeps it from here on.
  const image = imagePath(container.Image);
  const lookedFor = await runChecked(
    ctx.target,
    underDirLock(
      `${store}/images/.lock`,
      `${PRIVATE} printf '%s\\n' ${shellQuote([image])} >${shellQuote([`${partial}/${IMAGE_REF_FILE}`])} && if [ -s ${shellQuote([`${store}/${image}`])} ] && [ -s ${shellQuote([`${store}/${image}.sha256`])} ]; then echo have; else echo missing; fi`,
    ),
    { step: 'store', what: 'looking for the image in the store' },
  );
  const haveImage = lookedFor.stdout.trim() === 'have';
  // Opened before the first stream (journalled, removed whatever happens), closed after the last.
  const opened =
    routePlan.choice.route === 'direct'
      ? await log.group('Direct route: the source writes into the store itself', () =>
          openRoute(ctx, routePlan),
        )
      : undefined;
  if (opened && ctx.streams) ctx.streams.direct = opened;
  onRoute(routePlan, opened !== undefined);

  if (volumes.length > 0 && volumes.some((volume) => volume.contentsMoved)) {
    await prepareSnapshots(ctx);
    if (settings.volumePrecopy) {
      await log.group('Volumes: store the bulk while the container runs', () =>
        timer.time('volume-bulk', () => storeVolumes(ctx, volumes, partial, codec, 'bulk')),
      );
    }
  }
  // The writable layer's bulk while the container runs; only what changes after is copied frozen.
  const layerSnapshot = `${workRoot}/layer.snar`;
  const layerFrozen = `${workRoot}/layer-frozen.tar`;
  const bulk = withCodec(
    codec,
    `${PRIVATE} ${layerSendCommand(upper, layerSnapshot, true)}`,
    `${PRIVATE} cat >${shellQuote([`${partial}/layer/bulk.tar`])}`,
  );
  await log.group('Writable layer: store the bulk while the container runs', () =>
    timer.time('layer-bulk', () =>
      streamVia(ctx.streams, ctx.source, bulk.produce, ctx.target, bulk.consume, {
        label: 'writable layer (bulk)',
        step: 'store',
        log,
      }),
    ),
  );

  await unit?.allReady();
  const dumped = await log.group('Checkpoint: freeze and dump', () =>
    timer.time('checkpoint', () =>
      freezeAndDump(
        ctx,
        container,
        prepared,
        async () => {
          // The volumes as they are at the freeze: only what changed since the bulk pass, still frozen.
          if (volumes.length > 0) {
            await timer.time('volume-frozen', () => storeVolumes(ctx, volumes, partial, codec, 'frozen'));
          }
          // The layer as the dump saw it: what changed since the bulk, into a local file, still frozen.
          await timer.time('layer-frozen', () =>
            runChecked(
              ctx.source,
              `${PRIVATE} ${layerSendCommand(upper, layerSnapshot, false)} >${shellQuote([layerFrozen])}`,
              { step: 'checkpoint', what: 'copying the writable layer at the freeze' },
            ),
          );
          // A unit's members run on only once every member's state is on disk.
          await unit?.allDumped();
          // Resumed as soon as the images and the layer are written: measuring and copying them needs no freeze.
          if (settings.leaveRunning) {
            await mapped(ctx.sourceDocker.unpause(container.Id, 'checkpoint'), 'CHECKPOINT_FAILED');
          }
        },
        codec,
        unit?.allPaused,
      ),
    ),
  );
  const frozenMs = Math.round(settings.leaveRunning ? dumped.frozenFor : ctx.clock() - dumped.frozenAt);
  onFrozen(frozenMs);
  const { imagesBytes } = await measureCheckpoint(ctx, dumped);
  log.info(
    settings.leaveRunning
      ? `checkpoint: ${imagesBytes} bytes dumped; the container was frozen for ${frozenMs} ms and runs on`
      : `checkpoint: ${imagesBytes} bytes dumped; the container stays frozen and is stopped once the checkpoint is complete`,
  );

  // Into the store: CRIU images and CPU, the layer as frozen, the image once per image ID.
  // The run's token keeps two hosts saving one image under like names from sharing a file.
  const imageTemp = `${store}/${image}.${ctx.settings.checkpointName}.${ctx.journal.record.owner.token}.partial`;
  if (!haveImage) await ctx.journal.intend({ kind: 'files', side: 'target', paths: [imageTemp] }, 'target');
  const criuCodec = streamCodec(settings.compression, codec, dumped.pagesSample);
  log.info(
    `checkpoint stream: ${criuCodec.codec === 'none' ? 'raw' : criuCodec.codec} (${criuCodec.reason})`,
  );
  const criu = withCodec(
    criuCodec.codec,
    shellQuote(['tar', '-C', workRoot, '-cf', '-', 'images', 'cpu']),
    `${PRIVATE} ${shellQuote(['tar', '-C', partial, '--no-same-permissions', '-xf', '-'])} && mv ${shellQuote([`${partial}/images`, `${partial}/criu`])}`,
  );
  const layer = withCodec(
    codec,
    shellQuote(['cat', layerFrozen]),
    `${PRIVATE} cat >${shellQuote([`${partial}/layer/frozen.tar`])}`,
  );
  const saved = withCodec(
    codec,
    ctx.sourceDocker.saveImageCommand(container.Image),
    `${PRIVATE} cat >${shellQuote([imageTemp])}`,
  );
  const streamOptions = (label: string) => ({ label, step: 'store', log });
  const streams = await log.group('Store: write the checkpoint', () =>
    timer.time('transfer', () =>
      allSettledOrThrow([
        streamVia(
          ctx.streams,
          ctx.source,
          criu.produce,
          ctx.target,
          criu.consume,
          streamOptions('checkpoint'),
        ),
        streamVia(
          ctx.streams,
          ctx.source,
          layer.produce,
          ctx.target,
          layer.consume,
          streamOptions('writable layer (frozen)'),
        ),
        haveImage
          ? undefined
          : streamVia(
              ctx.streams,
              ctx.source,
              saved.produce,
              ctx.target,
              saved.consume,
              streamOptions('image'),
            ),
      ]),
    ),
  );
  if (opened) {
    if (ctx.streams) ctx.streams.direct = undefined;
    await closeRoute(ctx, opened);
  }
  const imageStream = streams[2];
  if (imageStream) {
    // The stream's checksum is of what travelled (maybe compressed): hash the file as stored.
    await runChecked(
      ctx.target,
      [
        PRIVATE,
        `t=${shellQuote([imageTemp])};`,
        `printf '%s %s\\n' "$(stat -c %s "$t")" "$(sha256sum <"$t" | cut -d' ' -f1)" >"$t.sha256"`,
        `&& mv "$t.sha256" ${shellQuote([`${store}/${image}.sha256`])} && mv "$t" ${shellQuote([`${store}/${image}`])}`,
      ].join(' '),
      { step: 'store', what: 'keeping the image in the store', options: { timeoutMs: 30 * 60_000 } },
    );
  }
  const imageSum = await runChecked(ctx.target, `cat ${shellQuote([`${store}/${image}.sha256`])}`, {
    step: 'store',
    what: "reading the image's checksum",
  });
  const [imageBytes = '0', imageSha = ''] = imageSum.stdout.trim().split(' ');
  // docker inspect as Docker printed it, so a restore parses it as it would a live container.
  const config: StoredConfig = {
    container: await ctx.sourceDocker.inspectContainerRaw(container.Id, 'store'),
    image: imageInspect.raw,
    ...(sourceHolder ? { holder: await ctx.sourceDocker.inspectContainerRaw(sourceHolder.Id, 'store') } : {}),
  };
  await runChecked(ctx.target, `${PRIVATE} cat >${shellQuote([`${partial}/config.json`])}`, {
    step: 'store',
    what: 'writing the container configuration',
    options: { input: `${JSON.stringify(config, null, 2)}\n` },
  });
  const layerArchives = ['layer/bulk.tar', 'layer/frozen.tar'];
  // The proof: the stored layer holds every open file as CRIU will expect it at restore.
  const openFiles: OpenFileCheck[] = await log.group('Check the stored layer against the dump', () =>
    timer.time('prove', () => proveLayer(ctx, dumped.imagesDir, partial, layerArchives)),
  );

  const files = (await digestFiles(ctx.target, partial, 'store')).filter(
    (file) => file.path !== IMAGE_REF_FILE,
  );
  const manifest: CheckpointManifest = {
    schema: 1,
    name: settings.checkpointName,
    container: {
      name: container.Name.replace(/^\//, ''),
      id: container.Id,
      imageId: container.Image,
      imageRef,
    },
    series,
    createdAt: new Date().toISOString(),
    versions: {
      kernel: facts.kernel.release,
      arch: facts.kernel.arch,
      criu: facts.criu.version?.raw,
      docker: facts.docker.serverVersion?.raw,
      containerd: facts.docker.containerdVersion?.raw,
      runc: facts.docker.runcVersion?.raw ?? facts.runc.version?.raw,
      ...(facts.docker.cgroupVersion ? { cgroupVersion: facts.docker.cgroupVersion } : {}),
      ...(facts.docker.cgroupDriver ? { cgroupDriver: facts.docker.cgroupDriver } : {}),
    },
    source: ctx.source.address,
    ...(prepared.tcpEstablished ? { dump: { tcpEstablished: true } } : {}),
    frozenMs,
    phasesMs: timer.toRecord(),
    files,
    image: { path: image, bytes: Number(imageBytes), sha256: imageSha },
    layer: { archives: layerArchives },
    openFiles,
    ...(volumes.length > 0 ? { volumes } : {}),
    network: {
      route,
      mode: container.HostConfig.NetworkMode || 'default',
      ...(route === 'holder' ? { holder: holderNeeds(sourceHolder ?? container, container) } : {}),
    },
  };
  // A unit's members commit only once every member's checkpoint is written and proved.
  await unit?.allVerified();
  // Complete: the manifest goes in, then one rename makes it a checkpoint. That is the commit point,
  // and it must reach the source's journal before leave-running: false may kill the container.
  await ctx.journal.around({ kind: 'committed', checkpoint: final }, 'any-host', async () => {
    await runChecked(
      ctx.target,
      // image.ref goes only once the manifest names the image where collection looks.
      `${PRIVATE} cat >${shellQuote([`${partial}/manifest.json`])} && mv -T ${shellQuote([partial, final])} && rm -f ${shellQuote([`${final}/${IMAGE_REF_FILE}`])}`,
      {
        step: 'store',
        what: 'completing the checkpoint',
        options: { input: `${JSON.stringify(manifest, null, 2)}\n` },
      },
    );
  });
  return manifest;
}

/**
 * The route the checkpoint is dumped for (policy/network-route.ts checkpointRoute): holder when
 * the container joins a holder an earlier migration made, or when docker28-network-holder asks
 * for it; direct otherwise. Logged, so the run says which targets the checkpoint can go to.
 */
async function networkRouteOf(
  ctx: RunContext<CheckpointSettings>,
  container: ContainerInspect,
): Promise<{ route: NetworkRoute; sourceHolder?: ContainerInspect }> {
  const mode = container.HostConfig.NetworkMode || 'default';
  const joined = mode.startsWith('container:') ? mode.slice('container:'.length) : undefined;
  const candidate = joined
    ? await ctx.sourceDocker.inspectContainer(joined, 'checkpoint').catch(() => undefined)
    : undefined;
  const sourceHolder = ownHolder({ container, sourceHolder: candidate });
  const route = checkpointRoute({
    networkMode: mode,
    joinsHolder: sourceHolder !== undefined,
    holderAllowed: ctx.settings.networkHolder,
  });
  ctx.log.info(
    mode === 'host'
      ? 'network route: host network, restores onto any Docker version'
      : route === 'holder'
        ? `network route: holder (${sourceHolder ? `joins network holder ${containerName(sourceHolder)}` : `${HOLDER_INPUT}: true`}): the network namespace stays out of the dump; restores through a network holder on any Docker version (restore with ${HOLDER_INPUT}: true)`
        : `network route: direct (${mode} network, its namespace in the dump): restores onto Docker before 28 only; set ${HOLDER_INPUT}: true for checkpoints that restore onto Docker 28/29`,
  );
  return { route, ...(sourceHolder ? { sourceHolder } : {}) };
}

/** series.json: which container started the series, on which host (written once). */
async function writeSeriesRecord(
  ctx: RunContext<CheckpointSettings>,
  home: string,
  series: string,
  containerId: string,
): Promise<void> {
  const text = JSON.stringify({
    series,
    container: ctx.settings.container,
    startedBy: containerId,
    startedOn: ctx.source.address,
    at: new Date().toISOString(),
  });
  await runChecked(
    ctx.target,
    `${PRIVATE} f=${shellQuote([`${home}/series.json`])}; [ -s "$f" ] || { cat >"$f.new" && mv -f "$f.new" "$f"; }`,
    { step: 'store', what: 'describing the series in the store', options: { input: `${text}\n` } },
  );
}

/**
 * First touch of a store written before series: the name's checkpoints move
 * into the series of the container that took them (its short ID), one rename each.
 */
async function adoptLegacyCheckpoints(
  store: Host,
  path: string,
  container: string,
  log: { info(m: string): void },
): Promise<void> {
  const legacy = (await listStoredCheckpoints(store, path, container)).filter((entry) => entry.legacy);
  if (legacy.length === 0) return;
  const moves = legacy.map((entry) => {
    const to = checkpointDir(path, container, entry.series, entry.manifest.name);
    return `mkdir -p ${shellQuote([seriesDir(path, container, entry.series)])} && { [ -e ${shellQuote([to])} ] || mv -T ${shellQuote([entry.dir, to])} 2>/dev/null || [ ! -e ${shellQuote([entry.dir])} ]; }`;
  });
  await runChecked(store, `${PRIVATE} ${moves.join(' && ')}`, {
    step: 'store',
    what: 'moving checkpoints of the layout before series into their series',
  });
  log.info(
    `store: moved ${legacy.length} checkpoint(s) of ${container} from the layout before series into series ${[...new Set(legacy.map((entry) => entry.series))].join(', ')} (by the container that took them)`,
  );
}

/** The metadata's view of the volumes kept with a checkpoint. */
export function storedVolumeFacts(volumes: readonly StoredVolume[]): VolumeFacts[] {
  return volumes.map((volume) => ({
    name: volume.name,
    ...(volume.sizeBytes === undefined ? {} : { sizeBytes: volume.sizeBytes }),
    target: 'stored',
    contentsMoved: volume.contentsMoved,
    passes: volume.passes,
    ...(volume.passes.at(-1) ? { sha256: volume.passes.at(-1)?.sha256 } : {}),
  }));
}

/** UNSAFE_VALUE when the source's inspects hold a name or path of a shape the action will not use. */
function refuseUnsafe(ctx: RunContext<CheckpointSettings>, problems: readonly string[]): void {
  const unsafe = shapeCheck(problems, "the source's docker inspect");
  if (!unsafe) return;
  throw new MigrationError(
    'UNSAFE_VALUE',
    `checkpoint refused before touching the container: ${unsafe.observed}`,
    {
      step: 'preflight',
      host: describeHost(ctx.source),
      remedy: unsafe.remedy,
    },
  );
}

/**
 * The named volumes the container mounts, read on the source: refused when
 * another container mounts one too (two writers), or when one cannot be read.
 */
async function volumesToStore(
  ctx: RunContext<CheckpointSettings>,
  container: ContainerInspect,
): Promise<StoredVolume[]> {
  const names = movedVolumeNames(container);
  if (names.length === 0) return [];
  const probed = await ctx.source.run(volumeProbeScript(names), { timeoutMs: COMMAND_TIMEOUT_MS });
  const probes = probed.exitCode === 0 ? parseVolumeProbes(probed.stdout) : [];
  const unreadable = probed.exitCode === 0 ? undefined : probed.stderr.trim() || `exit ${probed.exitCode}`;
  const stored: StoredVolume[] = [];
  for (const name of names) {
    const probe = probes.find((found) => found.name === name);
    const refused = sourceVolumeCheck(container, name, probe, unreadable);
    if (refused || !probe?.info) {
      throw new MigrationError(
        refused?.code ?? 'FACT_UNREADABLE',
        `checkpoint refused before touching the container: [source] volume ${name}: ${refused?.observed ?? 'not found'}`,
        { step: 'preflight', host: describeHost(ctx.source), remedy: refused?.remedy },
      );
    }
    stored.push({
      name,
      info: probe.info,
      ...(probe.sizeBytes === undefined ? {} : { sizeBytes: probe.sizeBytes }),
      contentsMoved: Object.keys(probe.info.options).length === 0,
      archives: [],
      passes: [],
    });
  }
  return stored;
}

/**
 * Keeps the newest `retention` complete checkpoints of this series (other
 * series, other hosts' containers of the same name included, are not this
 * run's to count), removes partial checkpoints of the series left by runs
 * that are gone (this run holds the series lock), then the images that no
 * checkpoint, complete or being written, refers to (under the images lock).
 */
export async function applyRetention(
  store: Host,
  settings: CheckpointSettings,
  series: string,
  log: { info(m: string): void; warning(m: string): void },
): Promise<string[] | undefined> {
  const path = settings.store.path;
  try {
    const mine = (await listStoredCheckpoints(store, path, settings.container)).filter(
      (entry) => entry.series === series && !entry.legacy,
    );
    const old = retentionPlan(
      mine.map((entry) => entry.manifest),
      settings.retention,
    );
    for (const manifest of old) {
      await runChecked(
        store,
        `rm -rf -- ${shellQuote([checkpointDir(path, settings.container, series, manifest.name)])}`,
        { step: 'retention', what: `removing checkpoint ${manifest.name}` },
      );
      log.info(
        `retention: removed checkpoint ${manifest.name} of series ${series} (keeping the newest ${settings.retention})`,
      );
    }
    const home = seriesDir(path, settings.container, series);
    const leftovers = await runChecked(
      store,
      `for d in ${shellQuote([home])}/.*.partial; do [ -d "$d" ] || continue; rm -rf -- "$d" && echo "$d"; done; true`,
      { step: 'retention', what: 'removing partial checkpoints of runs that are gone' },
    );
    for (const gone of leftovers.stdout.split('\n').filter(Boolean)) {
      log.info(`retention: removed ${gone}, left by a run that did not finish`);
    }
    await collectImages(store, path, log);
    return (await listStoredCheckpoints(store, path, settings.container))
      .filter((entry) => entry.series === series)
      .map((entry) => entry.manifest.name);
  } catch (error) {
    log.warning(`retention did not finish: ${errorMessage(error)}`);
    return undefined;
  }
}

/** Image collection, holding the images lock so no run can decide an image is there while it goes. */
export async function collectImages(
  store: Host,
  path: string,
  log: { info(m: string): void },
): Promise<void> {
  const lock = `${path}/images/.lock`;
  await runChecked(store, acquireDirLockScript(lock), {
    step: 'retention',
    what: 'taking the images lock',
  });
  try {
    const referred = await imagesReferred(store, path);
    const listed = await runChecked(
      store,
      `cd ${shellQuote([`${path}/images`])} && ls -1 -- *.tar 2>/dev/null; true`,
      { step: 'retention', what: 'listing the stored images' },
    );
    const files = listed.stdout
      .split('\n')
      .filter(Boolean)
      .map((file) => `images/${file}`);
    for (const unused of unusedImages(files, referred)) {
      await runChecked(store, `rm -f -- ${shellQuote([`${path}/${unused}`, `${path}/${unused}.sha256`])}`, {
        step: 'retention',
        what: `removing image ${unused}`,
      });
      log.info(`retention: removed ${unused}, which no checkpoint uses`);
    }
  } finally {
    await store.run(`rmdir ${shellQuote([lock])} 2>/dev/null; true`, { timeoutMs: 30_000 });
  }
}
