import {
  buildCreateArgs,
  buildHolderArgs,
  CRIU_CONFIG_ANNOTATION,
  splitEnvArgs,
} from '../engine/docker/create-args.js';
import type { ContainerInspect, ImageConfig } from '../engine/docker/inspect.js';
import { HOLDER_IMAGE, HOLDER_LABEL, holderImageScript, holderName } from '../engine/docker/net-holder.js';
import { EngineError, mapped } from '../engine/engine.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import type { StreamResult } from '../host/relay.js';
import { tailLines } from '../host/shell.js';
import { streamVia } from '../host/stream-routes.js';
import { type Codec, withCodec } from '../policy/compression.js';
import type { RestoreHostFacts } from '../policy/criu-config.js';
import { inspectShapeProblems } from '../policy/inspect-shape.js';
import type { NetworkRoute } from '../policy/network-route.js';
import { workDir } from '../state/host-records.js';
import type { MigrationContext, Named, RunContext } from './context.js';
import { prepareRestoreConfig, type RestoreConfigFile, writeRestoreConfig } from './restore-config.js';

export interface StageResult {
  /** The image reference the target container was created from. */
  imageRef: string;
  /** Set when the image had to be copied; rollback removes it again. */
  imageTransfer?: StreamResult;
  targetContainerId: string;
  targetName: string;
  targetUpperDir: string;
  targetCheckpointDir: string;
  restoreConfig?: RestoreConfigFile;
}

/** How the target container is made: its network route (policy/network-route.ts) and what its restore needs. */
export interface TargetPlan {
  route: NetworkRoute;
  /** The network holder the source container joins, when an earlier migration made one. */
  sourceHolder?: ContainerInspect;
  /** uname -m of the target, for the holder's program. */
  targetArch?: string;
  /** The target's cgroups and runc, for the restore's CRIU configuration. */
  restoreFacts?: RestoreHostFacts;
  /** memory: lazy: the lazy-pages daemon's directory, named in the restore's CRIU configuration. */
  lazyWorkDir?: string;
  /** Connections inside the container are dumped established, and restored so. */
  tcpEstablished?: boolean;
}

export function containerName(container: ContainerInspect): string {
  return container.Name.replace(/^\//, '');
}

/**
 * Everything that does not need the source frozen: the image on the target
 * (copied with docker save | docker load only when the target lacks that
 * image ID) and the target container, created with the source's configuration.
 * Each is written into the journal before it is made.
 */
export async function stage(
  ctx: MigrationContext,
  container: ContainerInspect,
  targetDockerRoot: string,
  codec: Codec,
  network: TargetPlan = { route: 'direct' },
): Promise<StageResult> {
  const problems = inspectShapeProblems(container);
  if (problems.length > 0) {
    throw new MigrationError(
      'INPUT_INVALID',
      `the source's docker inspect has values the action will not pass on`,
      {
        step: 'stage',
        host: describeHost(ctx.source),
        detail: problems.join('\n'),
        remedy: 'rename the container or re-tag its image with an ordinary name, then run again',
      },
    );
  }
  const imageId = container.Image;
  // Prefer the name the container was created with, when it still means the same image.
  const named = container.Config.Image;
  const namedId = named && named !== imageId ? await ctx.sourceDocker.imageId(named) : undefined;
  const imageRef = namedId === imageId && named ? named : imageId;

  let imageTransfer: StreamResult | undefined;
  const targetImageId = await ctx.targetDocker.imageId(imageId);
  if (targetImageId === imageId) {
    ctx.log.info(`target already has image ${imageId.slice(0, 19)}; not copying it`);
    if (imageRef !== imageId && (await ctx.targetDocker.imageId(imageRef)) !== imageId) {
      await ctx.targetDocker.tagImage(imageId, imageRef, 'stage');
    }
  } else {
    ctx.log.info(`target lacks image ${imageRef}; copying it with docker save | docker load`);
    const image = withCodec(
      codec,
      ctx.sourceDocker.saveImageCommand(imageRef),
      ctx.targetDocker.loadImageCommand(),
    );
    imageTransfer = await ctx.journal.around({ kind: 'image-copied', imageId }, 'target', () =>
      streamVia(ctx.streams, ctx.source, image.produce, ctx.target, image.consume, {
        label: 'image',
        step: 'stage',
        log: ctx.log,
        code: 'IMAGE_TRANSFER_FAILED',
      }),
    );
    const loaded = await ctx.targetDocker.imageId(imageId);
    if (loaded !== imageId) {
      throw new MigrationError(
        'IMAGE_TRANSFER_FAILED',
        `image ${imageRef} did not arrive with ID ${imageId}`,
        {
          step: 'stage',
          host: describeHost(ctx.target),
          detail: `the target reports ${loaded ?? 'no such image'}`,
        },
      );
    }
  }
  ctx.signal.throwIfAborted();

  // With the image's own config, settings the container merely inherited are left to the image.
  const imageConfig = (await ctx.sourceDocker.imageConfig(container.Image, 'stage')).config;
  const holder = network.route === 'holder' ? await createHolder(ctx, container, network) : undefined;
  ctx.signal.throwIfAborted();
  const created = await createTargetContainer(ctx, container, imageRef, imageConfig, targetDockerRoot, {
    ...(holder ? { networkContainer: holder } : {}),
    ...(network.restoreFacts ? { restoreFacts: network.restoreFacts } : {}),
    ...(network.lazyWorkDir ? { lazyWorkDir: network.lazyWorkDir } : {}),
    ...(network.tcpEstablished ? { tcpEstablished: true } : {}),
  });
  return { imageRef, imageTransfer, ...created, ...(holder ? { holderName: holder } : {}) };
}

/**
 * The network holder on the target, created and started before the container that will
 * join it: its image made on the target if missing, then the container (journalled first, so
 * a rollback removes it). Its network settings are the source container's, or on a later
 * move those of the holder the source container joins. Migrate's stage and restore mode use it.
 */
export async function createHolder(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  network: Pick<TargetPlan, 'sourceHolder' | 'targetArch'>,
  step = 'stage',
): Promise<string> {
  const app = containerName(container);
  const name = holderName(app);
  const arch = network.targetArch ?? 'unknown';
  const script = holderImageScript(arch);
  const fail = (message: string, detail?: string, remedy?: string): MigrationError =>
    new MigrationError('NETWORK_HOLDER_FAILED', message, {
      step,
      host: describeHost(ctx.target),
      ...(detail ? { detail } : {}),
      remedy:
        remedy ??
        'read the docker error above; the holder needs the network, addresses and published ports the container had on the source to be free on the target',
    });
  if (!script)
    throw fail(`no network holder program for ${arch}`, undefined, 'see NETWORK_HOLDER_UNSUPPORTED');
  const made = await ctx.target.run(script, { timeoutMs: 120_000 });
  if (made.exitCode !== 0)
    throw fail(`could not make the network holder image ${HOLDER_IMAGE}`, tailLines(made.stderr, 5));
  if (await ctx.targetDocker.inspectContainer(name, step)) {
    throw fail(
      `the target already has a container named ${name}`,
      undefined,
      `remove it on the target (docker rm -f ${name}) if it is a leftover, or rename the container: the network holder of ${app} takes that name`,
    );
  }
  const owner = network.sourceHolder ?? container;
  const args = buildHolderArgs(owner, container, { name, app, image: HOLDER_IMAGE, label: HOLDER_LABEL });
  const targetWork = workDir(ctx.settings);
  const cidFile = `${targetWork}/holder.cid`;
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [targetWork] }, 'target');
  const created = await ctx.journal.intend({ kind: 'holder-created', name, cidFile }, 'target');
  const id = await mapped(ctx.targetDocker.createAndStart(args, step, cidFile), 'NETWORK_HOLDER_FAILED');
  await ctx.journal.done(created, 'target', { containerId: id });
  ctx.log.info(`network holder ${name} (${id.slice(0, 12)}) owns the network on the target`);
  return name;
}

export interface CreatedTarget {
  targetContainerId: string;
  targetName: string;
  targetUpperDir: string;
  targetCheckpointDir: string;
  /** The CRIU configuration the container's annotation names, when the target needs one. */
  restoreConfig?: RestoreConfigFile;
}

export interface CreateTargetOptions {
  /** Join this network holder's namespace instead of recreating the network. */
  networkContainer?: string;
  /** What the target says of its cgroups and runc: decides whether the restore needs a CRIU configuration. */
  restoreFacts?: RestoreHostFacts;
  lazyWorkDir?: string;
  /** The dump keeps connections inside the container established: so must the restore. */
  tcpEstablished?: boolean;
}

/**
 * Creates the container on the target with the source's configuration, its
 * environment through a 0600 file; journalled before it is made.
 */
export async function createTargetContainer(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  imageRef: string,
  imageConfig: ImageConfig | undefined,
  targetDockerRoot: string,
  options: CreateTargetOptions = {},
): Promise<CreatedTarget> {
  const { networkContainer, restoreFacts, lazyWorkDir } = options;
  const targetName = containerName(container);
  const restoreConfig = restoreFacts
    ? await prepareRestoreConfig(ctx, restoreFacts, {
        ...(lazyWorkDir ? { lazyWorkDir } : {}),
        tcpEstablished: options.tcpEstablished === true,
      })
    : undefined;
  const { args, env } = splitEnvArgs(
    buildCreateArgs(container, {
      name: targetName,
      image: imageRef,
      ...(imageConfig ? { imageConfig } : {}),
      ...(networkContainer ? { networkContainer } : {}),
      ...(ctx.settings.keepAddresses ? { keepAddresses: true } : {}),
      ...(restoreConfig ? { annotations: { [CRIU_CONFIG_ANNOTATION]: restoreConfig.path } } : {}),
    }),
  );
  // The environment often holds secrets: a 0600 file, never the command line.
  const targetWork = workDir(ctx.settings);
  const envDir = `${targetWork}/create`;
  // Where docker create writes the ID: until it is journalled, the only proof the container is ours.
  const cidFile = `${targetWork}/target.cid`;
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [targetWork] }, 'target');
  const created = await ctx.journal.intend({ kind: 'target-created', name: targetName, cidFile }, 'target');
  const targetContainerId = await mapped(
    ctx.targetDocker.createWithEnvFile(args, env, envDir, 'stage', cidFile).catch((error: unknown) => {
      throw addressRefused(error, container) ?? error;
    }),
    'TARGET_CREATE_FAILED',
  );
  await ctx.journal.done(created, 'target', { containerId: targetContainerId });
  if (restoreConfig) {
    await writeRestoreConfig(ctx, restoreConfig, targetContainerId, container.HostConfig.CgroupParent);
  }
  const inspected = await ctx.targetDocker.inspectContainer(targetContainerId, 'stage');
  const upper = inspected?.GraphDriver?.Data?.UpperDir;
  if (!inspected || !upper) {
    throw new MigrationError('TARGET_CREATE_FAILED', 'the target container has no overlay2 upper directory', {
      step: 'stage',
      host: describeHost(ctx.target),
      remedy: 'use the overlay2 storage driver on the target',
    });
  }
  ctx.log.info(`created ${targetName} (${targetContainerId.slice(0, 12)}) on the target from ${imageRef}`);
  return {
    targetContainerId,
    targetName,
    targetUpperDir: upper,
    targetCheckpointDir: ctx.targetDocker.checkpointDir(
      targetDockerRoot,
      targetContainerId,
      ctx.settings.checkpointName,
    ),
    ...(restoreConfig ? { restoreConfig } : {}),
  };
}

/**
 * Docker takes a fixed address (--ip) only on a network whose subnet was given when it was made.
 * A network of the same name and definition that Docker sized by itself (compose's default
 * network on a host the unit once left) looks the same in inspect, so only the create tells.
 */
function addressRefused(error: unknown, container: ContainerInspect): MigrationError | undefined {
  if (!(error instanceof EngineError) || !/user specified IP address is supported only/i.test(error.stderr))
    return undefined;
  const networks = Object.keys(container.NetworkSettings?.Networks ?? {}).join(', ');
  return new MigrationError(
    'COMPOSE_NETWORK_CONFLICT',
    `the target's network ${networks} has no subnet of its own (Docker chose it), so the container cannot keep its address there`,
    {
      step: 'stage',
      host: error.host,
      detail: error.stderr.trim(),
      remedy: `remove that network on the target while no container uses it (docker network rm ${networks}) and run again: the unit creates it with the source's subnet and gateway`,
      cause: error,
    },
  );
}
