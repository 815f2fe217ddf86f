import type { ContainerInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { type StreamResult, streamBetween } from '../host/relay.js';
import { shellQuote } from '../host/shell.js';
import type { CheckpointResult } from './checkpoint.js';
import type { MigrationContext } from './context.js';
import type { StageResult } from './stage.js';

export interface MoveResult {
  checkpoint: StreamResult;
  writableLayer: StreamResult;
}

// GNU tar: keep overlay whiteouts (device nodes) and opaque-directory xattrs.
const LAYER_TAR = [
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
  ctx: MigrationContext,
  container: ContainerInspect,
  dumped: CheckpointResult,
  staged: StageResult,
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
  const [checkpoint, writableLayer] = await Promise.all([
    streamBetween(
      ctx.source,
      shellQuote(['tar', '-C', dumped.imagesDir, '-cf', '-', '.']),
      ctx.target,
      `mkdir -p ${shellQuote([staged.targetCheckpointDir])} && ${shellQuote(['tar', '-C', staged.targetCheckpointDir, '-xf', '-'])}`,
      { label: 'checkpoint', step: 'transfer', log: ctx.log },
    ),
    streamBetween(
      ctx.source,
      shellQuote(['tar', '-C', sourceUpper, ...LAYER_TAR, '-cf', '-', '.']),
      ctx.target,
      shellQuote(['tar', '-C', staged.targetUpperDir, ...LAYER_TAR, '-xpf', '-']),
      { label: 'writable layer', step: 'transfer', log: ctx.log },
    ),
  ]);
  return { checkpoint, writableLayer };
}
