/**
 * runc's cgroup v1 freezer gives up ("unable to freeze") when the cgroup stays FREEZING, as it
 * does while the container's processes fork on a loaded host; it thaws the cgroup before it says
 * so, so the container runs on and the pause can be tried again. Seen on the test bed: 1 of 16
 * migrations started together from one 2-core source, three tries 250 ms apart all stuck.
 */
export const FREEZE_RETRY = { attempts: 5, firstMs: 250, maxMs: 2_000 } as const;

/** Pure: the wait before attempt `attempt + 1`, doubling (three quick tries were not enough under load). */
export function freezeRetryDelay(attempt: number): number {
  return Math.min(FREEZE_RETRY.firstMs * 2 ** (attempt - 1), FREEZE_RETRY.maxMs);
}

/** Pure: a failed pause that left the container running and may succeed when tried again. */
export function isTransientFreezeFailure(stderr: string): boolean {
  return /unable to freeze/i.test(stderr);
}
