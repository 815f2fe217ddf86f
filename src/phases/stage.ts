import { buildCreateArgs } from '../docker/create-args.js';
import { type ContainerInspect, parseImageInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { type StreamResult, streamBetween } from '../host/relay.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { type Codec, withCodec } from '../policy/compression.js';
import type { MigrationContext } from './context.js';

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
 */
export async function stage(
  ctx: MigrationContext,
  container: ContainerInspect,
  targetDockerRoot: string,
  onCreated: (targetContainerId: string) => void,
  codec: Codec,
): Promise<StageResult> {
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
      await ctx.target.run(shellQuote(['docker', 'image', 'tag', imageId, imageRef]));
    }
  } else {
    ctx.log.info(`target lacks image ${imageRef}; copying it with docker save | docker load`);
    const image = withCodec(
      codec,
      shellQuote(['docker', 'save', imageRef]),
      shellQuote(['docker', 'load', '--quiet']),
    );
    imageTransfer = await streamBetween(ctx.source, image.produce, ctx.target, image.consume, {
      label: 'image',
      step: 'stage',
      log: ctx.log,
      code: 'IMAGE_TRANSFER_FAILED',
    });
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
  ctx.checkDeadline('stage');

  const targetName = containerName(container);
  // With the image's own config, settings the container merely inherited are left to the image.
  const image = await runChecked(ctx.source, shellQuote(['docker', 'image', 'inspect', container.Image]), {
    step: 'stage',
    what: 'docker image inspect',
  });
  const imageConfig = parseImageInspect(image.stdout).Config;
  const args = buildCreateArgs(container, { name: targetName, image: imageRef, imageConfig });
  const targetContainerId = await ctx.targetDocker.create(args, 'stage');
  onCreated(targetContainerId);
  const created = await ctx.targetDocker.inspectContainer(targetContainerId, 'stage');
  const upper = created?.GraphDriver?.Data?.UpperDir;
  if (!created || !upper) {
    throw new MigrationError('TARGET_CREATE_FAILED', 'the target container has no overlay2 upper directory', {
      step: 'stage',
      host: describeHost(ctx.target),
      remedy: 'use the overlay2 storage driver on the target',
    });
  }
  ctx.log.info(`created ${targetName} (${targetContainerId.slice(0, 12)}) on the target from ${imageRef}`);
  return {
    imageRef,
    imageTransfer,
    targetContainerId,
    targetName,
    targetUpperDir: upper,
    targetCheckpointDir: `${targetDockerRoot}/containers/${targetContainerId}/checkpoints/${ctx.settings.checkpointName}`,
  };
}
