import { asMigrationError, MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import type { MigrationContext } from './context.js';
import type { StageResult } from './stage.js';

export interface RestoreResult {
  restoreMs: number;
  /** Clock reading when the target reported the container running again. */
  runningAt: number;
}

/** `docker start --checkpoint`: CRIU restores the frozen processes inside the staged container. */
export async function restore(ctx: MigrationContext, staged: StageResult): Promise<RestoreResult> {
  const started = ctx.clock();
  const before = await containerdCopies(ctx);
  try {
    await ctx.targetDocker.startFromCheckpoint(
      staged.targetContainerId,
      ctx.settings.checkpointName,
      'restore',
    );
  } catch (error) {
    await removeDirs(ctx, await ourContainerdCopies(ctx, staged, before));
    const failure = asMigrationError(error, 'RESTORE_FAILED', {
      step: 'restore',
      host: describeHost(ctx.target),
    });
    throw new MigrationError(
      'RESTORE_FAILED',
      `the target could not restore the checkpoint: ${failure.message}`,
      {
        step: 'restore',
        host: describeHost(ctx.target),
        // containerd deletes the task directory, CRIU's restore.log with it, when a restore fails.
        detail: failure.detail,
        remedy:
          "run `criu check` on the target and compare both hosts' kernel, CRIU and runc versions; the source was resumed and nothing was left on the target",
        cause: error,
      },
    );
  }
  const runningAt = ctx.clock();
  await removeDirs(ctx, await ourContainerdCopies(ctx, staged, before));
  return { restoreMs: runningAt - started, runningAt };
}

// containerd 1.7 unpacks the checkpoint into /tmp/ctrd-checkpoint* for the
// restore and never removes it: a full copy of the memory image per restore.
const CONTAINERD_COPY_GLOB = '/tmp/ctrd-checkpoint*';

async function containerdCopies(ctx: MigrationContext): Promise<Set<string>> {
  const listed = await ctx.target.run(`ls -d ${CONTAINERD_COPY_GLOB} 2>/dev/null || true`);
  return new Set(listed.stdout.split('\n').filter(Boolean));
}

/** The copies this restore left, recognised by CRIU's inventory (unique per dump) so another restore's stay. */
async function ourContainerdCopies(
  ctx: MigrationContext,
  staged: StageResult,
  before: Set<string>,
): Promise<string[]> {
  const fresh = [...(await containerdCopies(ctx))].filter((dir) => !before.has(dir));
  if (fresh.length === 0) return [];
  const inventory = `${staged.targetCheckpointDir}/inventory.img`;
  const script = fresh
    .map(
      (dir) =>
        `if cmp -s ${shellQuote([`${dir}/inventory.img`, inventory])}; then echo ${shellQuote([dir])}; fi`,
    )
    .join('\n');
  const result = await ctx.target.run(script);
  return result.stdout.split('\n').filter(Boolean);
}

async function removeDirs(ctx: MigrationContext, dirs: string[]): Promise<void> {
  if (dirs.length === 0) return;
  const result = await ctx.target.run(`rm -rf ${shellQuote(dirs)}`);
  if (result.exitCode !== 0)
    ctx.log.warning(`could not remove containerd's copy of the checkpoint: ${result.stderr.trim()}`);
}
