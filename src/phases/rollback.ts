import type { ContainerInspect } from '../docker/inspect.js';
import { errorMessage, MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import type { MigrationContext } from './context.js';
import { cleanTemporaryFiles } from './finalize.js';
import type { StageResult } from './stage.js';

/** What the failed run had done, so rollback undoes exactly that. */
export interface RollbackPlan {
  container?: ContainerInspect;
  sourcePaused: boolean;
  /** A restore was attempted: the target may have run the service. */
  restoreAttempted: boolean;
  targetContainerId?: string;
  staged?: StageResult;
}

/**
 * Puts things back after a failure: the target container (and an image this
 * run copied) is removed first, then the source is resumed exactly where it
 * was frozen. If the target cannot be confirmed gone after a restore was
 * attempted, the source stays frozen: two live copies are worse than a pause.
 */
export async function rollback(ctx: MigrationContext, plan: RollbackPlan): Promise<string[]> {
  const done: string[] = [];
  const problems: string[] = [];
  let targetGone = true;
  if (plan.targetContainerId) {
    try {
      await ctx.targetDocker.remove(plan.targetContainerId, 'rollback', { force: true, volumes: false });
      done.push(`removed container ${plan.targetContainerId.slice(0, 12)} from the target`);
    } catch (error) {
      targetGone = false;
      problems.push(
        `target container ${plan.targetContainerId.slice(0, 12)} not removed: ${errorMessage(error)}`,
      );
    }
  }
  const copiedImage = plan.staged?.imageTransfer ? plan.container?.Image : undefined;
  if (copiedImage && targetGone) {
    try {
      if ((await ctx.targetDocker.containersUsingImage(copiedImage)).length === 0) {
        await ctx.targetDocker.removeImage(copiedImage, 'rollback');
        done.push(`removed image ${copiedImage.slice(0, 19)} this run copied to the target`);
      }
    } catch (error) {
      problems.push(`image ${copiedImage.slice(0, 19)} not removed from the target: ${errorMessage(error)}`);
    }
  }
  if (plan.sourcePaused && plan.container) {
    if (!targetGone && plan.restoreAttempted) {
      problems.push('the source was left frozen because the target container could not be confirmed gone');
    } else {
      try {
        await ctx.sourceDocker.unpause(plan.container.Id, 'rollback');
        done.push('resumed the source container where it was frozen');
      } catch (error) {
        problems.push(`source not resumed: ${errorMessage(error)}`);
      }
    }
  }
  problems.push(...(await cleanTemporaryFiles(ctx, plan.staged)));
  for (const line of done) ctx.log.info(`rollback: ${line}`);
  if (problems.length > 0) {
    const id = plan.container?.Id.slice(0, 12) ?? '<container>';
    throw new MigrationError('ROLLBACK_FAILED', `rollback did not finish: ${problems.join('; ')}`, {
      step: 'rollback',
      host: describeHost(ctx.source),
      remedy: `check both hosts by hand: on the target remove the new container (docker rm -f), then on the source run docker unpause ${id}`,
    });
  }
  return done;
}
