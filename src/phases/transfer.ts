import type { ContainerInspect } from '../engine/docker/inspect.js';
import {
  type ContainerdTmp,
  containerdTmpScript,
  describeRestorePath,
  parseContainerdTmp,
  parseStagedCheckpoint,
  type RestorePath,
  stagedCheckpointScript,
} from '../engine/docker/staged-pages.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { type StreamResult, streamBetween } from '../host/relay.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { CODEC_PROBE, type Codec, chooseCodec, parseCodecs, withCodec } from '../policy/compression.js';
import type { Compression } from '../settings.js';
import { PRIVATE, workDir } from '../state/host-records.js';
import type { CheckpointResult } from './checkpoint.js';
import type { Named, RunContext } from './context.js';
import type { StageResult } from './stage.js';

export interface MoveResult {
  checkpoint: StreamResult;
  writableLayer: StreamResult;
  restorePath: RestorePath;
}

// GNU tar: keep overlay whiteouts (device nodes) and opaque-directory xattrs.
export const LAYER_TAR = [
  '--numeric-owner',
  '--xattrs',
  '--xattrs-include=trusted.*',
  '--xattrs-include=security.*',
];

/**
 * Moves the frozen state: CRIU's images to the target (staged beside Docker's
 * checkpoint directory, or into it; see receiveCheckpoint), and the source's
 * writable layer into the target's upper directory. Both streams run at once;
 * the image layers never travel again.
 */
export async function moveState(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  dumped: CheckpointResult,
  staged: StageResult,
  codec: Codec,
  containerd: ContainerdTmp,
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
  const receiving = await receiveCheckpoint(ctx, containerd, staged.targetCheckpointDir);
  const images = withCodec(
    codec,
    shellQuote(['tar', '-C', dumped.imagesDir, '-cf', '-', '.']),
    receiving.consume,
  );
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
  return { checkpoint, writableLayer, restorePath: await receiving.finish() };
}

export interface CheckpointReceiver {
  /** The target's end of the images stream: a tar extracting them. */
  consume: string;
  /** Once the images arrived: builds Docker's checkpoint directory, says which restore path it took. */
  finish(): Promise<RestorePath>;
}

/** Where the images are staged on the target, inside the run's work directory. */
export function stagingDir(checkpointName: string): string {
  return `${workDir(checkpointName)}/staged`;
}

/**
 * The target's side of the images stream, journalled. With containerd's
 * TMPDIR known, the images land in the staging directory and Docker's
 * checkpoint directory gets copies of the small ones and relative links for
 * the pages, so `docker start --checkpoint` copies only a few KiB. Without
 * it they land in the checkpoint directory itself (the full copy).
 */
export async function receiveCheckpoint(
  ctx: RunContext<Named>,
  containerd: ContainerdTmp,
  checkpointDir: string,
): Promise<CheckpointReceiver> {
  // Root-only on the target too: umask 077 and tar told not to restore the source's modes.
  const extractInto = (dir: string) =>
    `${PRIVATE} mkdir -p ${shellQuote([dir])} && ${shellQuote(['tar', '-C', dir, '--no-same-permissions', '-xf', '-'])}`;
  if (!containerd.found) {
    await ctx.journal.intend({ kind: 'files', side: 'target', paths: [checkpointDir] }, 'target');
    return {
      consume: extractInto(checkpointDir),
      finish: async () => announce(ctx, { path: 'full-copy', reason: containerd.reason }),
    };
  }
  const staging = stagingDir(ctx.settings.checkpointName);
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [staging, checkpointDir] }, 'target');
  return {
    consume: extractInto(staging),
    finish: async () => {
      const result = await runChecked(
        ctx.target,
        `${PRIVATE} ${stagedCheckpointScript(staging, checkpointDir, containerd.dir)}`,
        {
          step: 'transfer',
          what: "building Docker's checkpoint directory from the staged images",
          code: 'TRANSFER_FAILED',
          options: { timeoutMs: 120_000 },
        },
      );
      const path = parseStagedCheckpoint(result.stdout) ?? {
        path: 'full-copy',
        reason: `unexpected answer ${JSON.stringify(result.stdout.trim().slice(0, 200))}`,
      };
      return announce(ctx, path);
    },
  };
}

function announce(ctx: RunContext<Named>, path: RestorePath): RestorePath {
  const said = `restore path: ${describeRestorePath(path)}`;
  if (path.path === 'staged-pages') ctx.log.info(said);
  else ctx.log.warning(`${said}; docker start --checkpoint copies every page twice before CRIU runs`);
  return path;
}

/**
 * Before the freeze: which TMPDIR the target's containerd unpacks checkpoints
 * into, so the pages can be linked from there.
 */
export async function probeContainerdTmp(ctx: RunContext<unknown>): Promise<ContainerdTmp> {
  const result = await ctx.target.run(containerdTmpScript(), { timeoutMs: 30_000 });
  const found = parseContainerdTmp(result.stdout, result.exitCode);
  if (found.found)
    ctx.log.info(
      `containerd on the target (${found.kind}, pid ${found.pid}) unpacks checkpoints into ${found.dir}: the pages will be staged and linked`,
    );
  return found;
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
