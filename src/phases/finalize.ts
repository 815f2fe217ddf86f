import type { ContainerInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import { criuWorkDir, imagesDir } from '../migration-state.js';
import type { MigrationContext } from './context.js';
import type { StageResult } from './stage.js';

export interface FinalizeResult {
  sourceState: 'stopped' | 'removed';
  sourceRestartPolicy: string;
}

export function restartPolicyText(container: ContainerInspect): string {
  const policy = container.HostConfig.RestartPolicy;
  if (!policy?.Name) return 'no';
  return policy.Name === 'on-failure' && policy.MaximumRetryCount
    ? `on-failure:${policy.MaximumRetryCount}`
    : policy.Name;
}

/**
 * The target is verified: retire the frozen source without letting it run
 * again. Its restart policy goes to "no" first (a daemon restart must never
 * bring back a second copy), then SIGKILL ends it while still frozen.
 */
export async function finalize(
  ctx: MigrationContext,
  container: ContainerInspect,
  staged: StageResult,
): Promise<FinalizeResult> {
  const id = container.Id;
  const sourceRestartPolicy = restartPolicyText(container);
  if (sourceRestartPolicy !== 'no') await ctx.sourceDocker.setRestartPolicy(id, 'no', 'finalize');
  await ctx.sourceDocker.kill(id, 'finalize');
  const after = await ctx.sourceDocker.inspectContainer(id, 'finalize');
  if (after?.State.Running && !after.State.Paused) {
    throw new MigrationError('SOURCE_STOP_FAILED', 'the source container is still running after SIGKILL', {
      step: 'finalize',
      host: describeHost(ctx.source),
      remedy: `stop it by hand now (docker kill ${id.slice(0, 12)}): the target already runs the service`,
    });
  }
  let sourceState: FinalizeResult['sourceState'] = 'stopped';
  if (ctx.settings.sourceAfter === 'remove') {
    await ctx.sourceDocker.remove(id, 'finalize', { force: true });
    sourceState = 'removed';
  }
  await cleanTemporaryFiles(ctx, staged);
  ctx.log.info(
    sourceState === 'stopped'
      ? `source container kept, stopped, restart policy set to "no" (was "${sourceRestartPolicy}")`
      : 'source container removed',
  );
  return { sourceState, sourceRestartPolicy };
}

/** The memory images on both hosts: large, and worthless once the target runs. */
export async function cleanTemporaryFiles(
  ctx: MigrationContext,
  staged: StageResult | undefined,
): Promise<string[]> {
  const name = ctx.settings.checkpointName;
  const problems: string[] = [];
  const source = await ctx.source.run(`rm -rf ${shellQuote([imagesDir(name), criuWorkDir(name)])}`);
  if (source.exitCode !== 0) problems.push(`${describeHost(ctx.source)}: ${source.stderr.trim()}`);
  if (staged) {
    const target = await ctx.target.run(`rm -rf ${shellQuote([staged.targetCheckpointDir])}`);
    if (target.exitCode !== 0) problems.push(`${describeHost(ctx.target)}: ${target.stderr.trim()}`);
  }
  for (const problem of problems) ctx.log.warning(`could not remove temporary files: ${problem}`);
  return problems;
}
