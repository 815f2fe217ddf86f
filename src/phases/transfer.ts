import type { ContainerInspect } from '../engine/docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { type StreamResult, streamBetween } from '../host/relay.js';
import { shellQuote } from '../host/shell.js';
import { CODEC_PROBE, type Codec, chooseCodec, parseCodecs, withCodec } from '../policy/compression.js';
import type { Compression } from '../settings.js';
import { PRIVATE } from '../state/host-records.js';
import type { CheckpointResult } from './checkpoint.js';
import type { RunContext } from './context.js';
import type { StageResult } from './stage.js';

export interface MoveResult {
  checkpoint: StreamResult;
  writableLayer: StreamResult;
}

// GNU tar: keep overlay whiteouts (device nodes) and opaque-directory xattrs.
export const LAYER_TAR = [
  '--numeric-owner',
  '--xattrs',
  '--xattrs-include=trusted.*',
  '--xattrs-include=security.*',
];

/**
 * Moves the frozen state: CRIU's images into the target container's
 * checkpoint directory (the only place `docker start --checkpoint` reads),
 * and the source's writable layer into the target's upper directory. Both
 * streams run at once; the image layers never travel again.
 */
export async function moveState(
  ctx: RunContext<unknown>,
  container: ContainerInspect,
  dumped: CheckpointResult,
  staged: StageResult,
  codec: Codec,
): Promise<MoveResult> {
  const sourceUpper = container.GraphDriver?.Data?.UpperDir;
  if (!sourceUpper) {
    throw new MigrationError(
      'STORAGE_DRIVER_UNSUPPORTED',
      'the source container has no overlay2 upper directory',
      {
        step: 'transfer',
        host: describeHost(ctx.source),
      },
    );
  }
  // Root-only on the target too: umask 077 and tar told not to restore the source's modes.
  const images = withCodec(
    codec,
    shellQuote(['tar', '-C', dumped.imagesDir, '-cf', '-', '.']),
    `${PRIVATE} mkdir -p ${shellQuote([staged.targetCheckpointDir])} && ${shellQuote(['tar', '-C', staged.targetCheckpointDir, '--no-same-permissions', '-xf', '-'])}`,
  );
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [staged.targetCheckpointDir] }, 'target');
  const layer = withCodec(
    codec,
    shellQuote(['tar', '-C', sourceUpper, ...LAYER_TAR, '-cf', '-', '.']),
    shellQuote(['tar', '-C', staged.targetUpperDir, ...LAYER_TAR, '-xpf', '-']),
  );
  const [checkpoint, writableLayer] = await Promise.all([
    streamBetween(ctx.source, images.produce, ctx.target, images.consume, {
      label: 'checkpoint',
      step: 'transfer',
      log: ctx.log,
    }),
    streamBetween(ctx.source, layer.produce, ctx.target, layer.consume, {
      label: 'writable layer',
      step: 'transfer',
      log: ctx.log,
    }),
  ]);
  return { checkpoint, writableLayer };
}

/** Which compression both hosts can run, decided before the freeze. */
export async function negotiateCodec(ctx: RunContext<{ compression: Compression }>): Promise<Codec> {
  const [source, target] = await Promise.all([ctx.source.run(CODEC_PROBE), ctx.target.run(CODEC_PROBE)]);
  const codec = chooseCodec(ctx.settings.compression, parseCodecs(source.stdout), parseCodecs(target.stdout));
  ctx.log.info(
    `streams between the hosts: ${codec === 'none' ? 'uncompressed' : `compressed with ${codec}`}`,
  );
  return codec;
}
