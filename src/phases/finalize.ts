import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { JournalEntry } from '../state/journal.js';
import { type RecoveryHosts, recover } from '../state/recovery.js';
import type { MigrationContext } from './context.js';

export interface FinalizeResult {
  sourceRestartPolicy: string;
  /** What could not be finished, each with what to do; the target runs regardless. */
  leftovers: string[];
}

export function restartPolicyText(container: ContainerInspect): string {
  const policy = container.HostConfig.RestartPolicy;
  if (!policy?.Name) return 'no';
  return policy.Name === 'on-failure' && policy.MaximumRetryCount
    ? `on-failure:${policy.MaximumRetryCount}`
    : policy.Name;
}

/**
 * Past the commit point: retire the frozen source without letting it run
 * again (restart policy "no" first, so a daemon restart never brings back a
 * second copy, then SIGKILL while still frozen, then remove it if asked) and
 * remove the memory images. This is the journal's roll-forward, the same a
 * later run or the post step would do; it uses hosts that a cancellation does
 * not stop, retries, and never touches the target.
 */
export async function finalize(
  ctx: MigrationContext,
  hosts: RecoveryHosts,
  container: ContainerInspect,
  /** Named volumes the run moved: with source-after: remove they leave the source too. */
  volumeNames: readonly string[] = [],
  /** The network holder the source container joins: retired with it. */
  sourceHolder?: ContainerInspect,
): Promise<FinalizeResult> {
  const sourceRestartPolicy = restartPolicyText(container);
  // The roll-forward is owed whether or not these notes reach the source.
  const entries: JournalEntry[] = await ctx.journal.intendAll(
    [
      ...(sourceHolder ? [{ kind: 'source-holder' as const, containerId: sourceHolder.Id }] : []),
      { kind: 'restart-policy', containerId: container.Id, previous: sourceRestartPolicy },
      { kind: 'source-stopped', containerId: container.Id },
      ...(ctx.settings.sourceAfter === 'remove'
        ? [{ kind: 'source-removed' as const, containerId: container.Id }]
        : []),
      ...(ctx.settings.sourceAfter === 'remove' && volumeNames.length > 0
        ? [{ kind: 'source-volumes-removed' as const, names: [...volumeNames] }]
        : []),
    ],
    undefined,
  );
  const outcome = await recover(ctx.journal.record, hosts, ctx.log);
  if (outcome.problems.length === 0) {
    for (const entry of entries) entry.state = 'done';
    await ctx.journal.save().catch(() => {});
  }
  return { sourceRestartPolicy, leftovers: outcome.problems };
}
