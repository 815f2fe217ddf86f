import { describe, expect, it } from 'vitest';
import { pauseRetrying } from '../../src/engine/docker/pause.js';
import { EngineError } from '../../src/engine/engine.js';
import { FREEZE_RETRY, freezeRetryDelay, isTransientFreezeFailure } from '../../src/policy/freeze.js';

const FROZEN_STUCK =
  'Error response from daemon: cannot pause container 6157bb: OCI runtime pause failed: unable to freeze: unknown';

function failure(stderr: string): EngineError {
  return new EngineError('docker pause x', 1, stderr, 'docker pause failed: exited with 1', {
    step: 'checkpoint',
    host: 'source h',
  });
}

/** An engine whose pause fails with the given errors in turn, then succeeds. */
function engine(errors: EngineError[]): { pause: () => Promise<void>; calls: number } {
  const fake = {
    calls: 0,
    async pause(): Promise<void> {
      const error = errors[fake.calls];
      fake.calls++;
      if (error) throw error;
    },
  };
  return fake;
}

describe('freeze retry', () => {
  it("knows runc's freeze that did not settle, and nothing else", () => {
    expect(isTransientFreezeFailure(FROZEN_STUCK)).toBe(true);
    expect(isTransientFreezeFailure('Error response from daemon: container x is not running')).toBe(false);
    expect(isTransientFreezeFailure('')).toBe(false);
  });

  it('tries a stuck freeze again, says so each time, and stops once it worked', async () => {
    const fake = engine([failure(FROZEN_STUCK), failure(FROZEN_STUCK)]);
    const notes: string[] = [];
    const waits: number[] = [];
    await pauseRetrying(
      fake,
      'x',
      'checkpoint',
      (note) => notes.push(note),
      async (ms) => {
        waits.push(ms);
      },
    );
    expect(fake.calls).toBe(3);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(/could not freeze.*attempt 2 of 5/);
    expect(waits).toEqual([250, 500]);
  });

  it('gives up after the last attempt with the last error', async () => {
    const last = failure(`${FROZEN_STUCK} (last)`);
    const fake = engine([
      ...Array.from({ length: FREEZE_RETRY.attempts - 1 }, () => failure(FROZEN_STUCK)),
      last,
      failure(FROZEN_STUCK),
    ]);
    await expect(
      pauseRetrying(
        fake,
        'x',
        'checkpoint',
        () => {},
        async () => {},
      ),
    ).rejects.toBe(last);
    expect(fake.calls).toBe(FREEZE_RETRY.attempts);
  });

  it('waits longer each time, up to a bound', () => {
    expect([1, 2, 3, 4, 5, 6].map(freezeRetryDelay)).toEqual([250, 500, 1000, 2000, 2000, 2000]);
  });

  it('throws any other failure at once', async () => {
    const other = failure('Error response from daemon: container x is already paused');
    const fake = engine([other]);
    const notes: string[] = [];
    await expect(
      pauseRetrying(
        fake,
        'x',
        'checkpoint',
        (n) => notes.push(n),
        async () => {},
      ),
    ).rejects.toBe(other);
    expect(fake.calls).toBe(1);
    expect(notes).toEqual([]);
  });
});
