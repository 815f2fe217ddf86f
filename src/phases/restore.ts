import { MigrationError, asMigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import { criuLogErrors } from './checkpoint.js';
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
  try {
    await ctx.targetDocker.startFromCheckpoint(staged.targetContainerId, ctx.settings.checkpointName, 'restore');
  } catch (error) {
    const failure = asMigrationError(error, 'RESTORE_FAILED', { step: 'restore', host: describeHost(ctx.target) });
    const log = await findRestoreLog(ctx, staged.targetContainerId);
    throw new MigrationError('RESTORE_FAILED', `the target could not restore the checkpoint: ${failure.message}`, {
      step: 'restore',
      host: describeHost(ctx.target),
      detail: [failure.detail, log].filter(Boolean).join('\n'),
      remedy: 'read the CRIU lines above; the source was resumed and nothing was left on the target',
      cause: error,
    });
  }
  const runningAt = ctx.clock();
  return { restoreMs: runningAt - started, runningAt };
}

/** containerd leaves CRIU's restore.log in the task's work directory; its path varies by version. */
async function findRestoreLog(ctx: MigrationContext, containerId: string): Promise<string> {
  const found = await ctx.target.run(
    `find /run/docker/containerd /var/run/docker/containerd /run/containerd /var/lib/docker/containerd -path ${shellQuote([`*${containerId}*`])} -name restore.log 2>/dev/null | head -n 1`,
  );
  const path = found.stdout.trim();
  return path ? criuLogErrors(ctx.target, path) : '';
}
