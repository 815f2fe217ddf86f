import { LOCK_STALE_SECONDS } from '../state/host-records.js';
import type { RunOwner } from '../state/journal.js';

export interface LockHolderView {
  owner?: RunOwner;
  ageSeconds: number;
}

export interface Here {
  machine?: string;
  bootId?: string;
  /** This process's PID namespace ("pid:[4026531836]"): a PID means something only inside it. */
  pidNs?: string;
  /** Whether a process of this machine (in our PID namespace) is alive. */
  isAlive(pid: number): boolean;
}

/**
 * A held lock belongs to a run that is gone when its holder has not renewed
 * it for LOCK_STALE_SECONDS, or when the holder ran on this very machine
 * (same boot, same PID namespace) and its process no longer exists. A runner
 * in a container may share the machine's name and boot ID but not its PIDs:
 * without a matching PID namespace only the age counts.
 */
export function staleLockReason(
  held: LockHolderView,
  here: Here,
  staleSeconds = LOCK_STALE_SECONDS,
): string | undefined {
  if (held.ageSeconds > staleSeconds) return `not renewed for ${held.ageSeconds} s`;
  const owner = held.owner;
  if (
    owner &&
    here.machine !== undefined &&
    here.bootId !== undefined &&
    owner.machine === here.machine &&
    owner.bootId === here.bootId &&
    here.pidNs !== undefined &&
    owner.pidNs === here.pidNs &&
    !here.isAlive(owner.pid)
  ) {
    return `its process ${owner.pid} on ${owner.machine} has ended`;
  }
  return undefined;
}

/** "GitHub run 123 attempt 2 (job migrate), started 2026-11-28T09:00:00Z": for MIGRATION_IN_PROGRESS. */
export function describeOwner(owner: RunOwner | undefined): string {
  if (!owner) return 'another run (its owner file is unreadable)';
  const run = owner.githubRunId
    ? `GitHub run ${owner.githubRunId}${owner.githubRunAttempt ? ` attempt ${owner.githubRunAttempt}` : ''}${owner.githubJob ? ` (job ${owner.githubJob})` : ''}`
    : `a run on ${owner.machine ?? 'an unknown machine'} (pid ${owner.pid})`;
  return `${run}, started ${owner.startedAt}`;
}
