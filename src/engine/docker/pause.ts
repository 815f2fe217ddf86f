import { FREEZE_RETRY, freezeRetryDelay, isTransientFreezeFailure } from '../../policy/freeze.js';
import { type ContainerEngine, EngineError } from '../engine.js';

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `docker pause`, tried again (at most FREEZE_RETRY.attempts in all) while runc reports a freeze
 * that did not settle; every other failure, and the last one, is thrown as it came.
 */
export async function pauseRetrying(
  engine: Pick<ContainerEngine, 'pause'>,
  id: string,
  step: string,
  onRetry: (message: string) => void,
  sleep: (ms: number) => Promise<void> = delay,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await engine.pause(id, step);
      return;
    } catch (error) {
      const transient = error instanceof EngineError && isTransientFreezeFailure(error.stderr);
      if (!transient || attempt >= FREEZE_RETRY.attempts) throw error;
      const wait = freezeRetryDelay(attempt);
      onRetry(
        `docker pause: runc could not freeze the container's cgroup (busy host?); it was thawed again, trying again in ${wait} ms (attempt ${attempt + 1} of ${FREEZE_RETRY.attempts})`,
      );
      await sleep(wait);
    }
  }
}
