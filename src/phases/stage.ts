import { buildCreateArgs, splitEnvArgs } from '../engine/docker/create-args.js';
import type { ContainerInspect, ImageConfig } from '../engine/docker/inspect.js';
import { mapped } from '../engine/engine.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { type StreamResult, streamBetween } from '../host/relay.js';
import { type Codec, withCodec } from '../policy/compression.js';
import { inspectShapeProblems } from '../policy/inspect-shape.js';
import { workDir } from '../state/host-records.js';
import type { MigrationContext, Named, RunContext } from './context.js';

export interface StageResult {
  /** The image reference the target container was created from. */
  imageRef: string;
  /** Set when the image had to be copied; rollback removes it again. */
  imageTransfer?: StreamResult;
  targetContainerId: string;
  targetName: string;
  targetUpperDir: string;
  targetCheckpointDir: string;
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
      streamBetween(ctx.source, image.produce, ctx.target, image.consume, {
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
  const created = await createTargetContainer(ctx, container, imageRef, imageConfig, targetDockerRoot);
  return { imageRef, imageTransfer, ...created };
}

export interface CreatedTarget {
  targetContainerId: string;
  targetName: string;
  targetUpperDir: string;
  targetCheckpointDir: string;
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
): Promise<CreatedTarget> {
  const targetName = containerName(container);
  const { args, env } = splitEnvArgs(
    buildCreateArgs(container, {
      name: targetName,
      image: imageRef,
      ...(imageConfig ? { imageConfig } : {}),
    }),
  );
  // The environment often holds secrets: a 0600 file, never the command line.
  const targetWork = workDir(ctx.settings.checkpointName);
  const envDir = `${targetWork}/create`;
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [targetWork] }, 'target');
  const created = await ctx.journal.intend({ kind: 'target-created', name: targetName }, 'target');
  const targetContainerId = await mapped(
    ctx.targetDocker.createWithEnvFile(args, env, envDir, 'stage'),
    'TARGET_CREATE_FAILED',
  );
  await ctx.journal.done(created, 'target', { containerId: targetContainerId });
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
  };
}
