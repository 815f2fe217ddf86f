import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWrapper, release, waitHeld } from './faults.js';
import { containerState, expectNothingLeft } from './invariants.js';
import { memoryMoveInputs, memorySum, startMemoryWorkload } from './memory-workload.js';
import { runAction, runPostStep, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, type Testbed } from './testbed.js';

// memory: overlap on the default bed: the target's CRIU page server takes the pages while the
// source dumps them, through the runner's two SSH connections.
let bed: Testbed;
const name = 'e2e-overlap';
const WRAPPER = '/usr/local/bin/criu';
/** The two tools a host's hashsum may use (src/host/relay.ts HASH_SUM), wrapped to sum a changed byte. */
const HASHERS = { openssl: 'dgst', sha256sum: '-' } as const;
const HASHER_WRAPPERS = Object.keys(HASHERS)
  .map((tool) => `/usr/local/bin/${tool}`)
  .join(' ');
/** What runs on a host for a move with memory: overlap, and must be gone after it. */
const OVERLAP_PROCESSES = "'[c]riu page-server|[E]xitOnForwardFailure|[I]O::Socket::INET'";
const STATE_ROOT = '/var/lib/criu-migrate';

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return memoryMoveInputs(bed, name, { memory: 'overlap', ...extra });
}

/** A criu wrapper's start: anything but the page server runs as it is; the server starts in the background, its images directory in $dir. */
const PAGE_SERVER_PRELUDE = `#!/bin/sh
[ "$1" = page-server ] || exec /usr/sbin/criu "$@"
dir=; prev=; for a in "$@"; do [ "$prev" = --images-dir ] && dir=$a; prev=$a; done
/usr/sbin/criu "$@" &
`;

beforeAll(() => {
  bed = loadTestbed();
});

/** No page server, ssh forward or hashed forward of a run left on either host. */
async function expectNoOverlapProcesses(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    const left = await onHostResult(bed, host, `pgrep -af ${OVERLAP_PROCESSES}`);
    expect(left.stdout, `left on ${host}`).toBe('');
  }
}

/** Rolled back: nothing on the target, the source running with the memory it had, nothing left behind. */
async function expectBackOnSource(before: string): Promise<void> {
  expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  expect(await memorySum(bed, bed.host1, name)).toBe(before);
  await expectNothingLeft(bed, name);
  await expectNoOverlapProcesses();
}

afterAll(async () => {
  await onHostResult(bed, bed.host1, `umount ${STATE_ROOT}`);
  await onHostResult(bed, bed.host2, `rm -f ${WRAPPER} ${HASHER_WRAPPERS}`);
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

describe('memory: overlap (the pages travel during the dump)', () => {
  for (const route of ['direct', 'relay'] as const) {
    it(`route ${route}: moves the container with its memory intact, the pages sent during the dump`, async () => {
      const before = await startMemoryWorkload(bed, name, 64);
      const run = await runAction(inputs({ route }));
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.status).toBe('succeeded');
      expect(run.stdout).toContain(
        route === 'direct'
          ? 'overlap: the memory reached the target during the dump (host to host)'
          : 'overlap: the memory reached the target during the dump (',
      );
      const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
      console.log(`overlap 64 MiB, route ${route}: downtime ${metadata.timings.downtimeMs} ms`);
      // The checkpoint stream after the dump held only the small images; the memory went before,
      // summed by both hosts' ends of the page stream.
      expect(metadata.checkpoint.streams.checkpoint.bytes).toBeLessThan(1024 * 1024);
      expect(metadata.checkpoint.streams.pages.bytes).toBeGreaterThan(64 * 1024 * 1024);
      expect(metadata.checkpoint.streams.pages.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(run.stdout).toMatch(
        /overlap: 6\d\.\d MiB of pages, sha256 [0-9a-f]{16}… the same on both hosts/,
      );
      if (route === 'direct') expect(metadata.route.runnerBytes).toBeLessThan(1024 * 1024);
      else expect(metadata.route.runnerBytes).toBeGreaterThan(64 * 1024 * 1024);
      // The same process, its memory re-read by itself on the target.
      expect(await memorySum(bed, bed.host2, name)).toBe(before);
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false });
      await expectNothingLeft(bed, name);
      await expectNoOverlapProcesses();
    });
  }

  it("the target's page server killed mid-dump: the source resumes intact, nothing on the target, rolled back", async () => {
    const before = await startMemoryWorkload(bed, name, 256);
    // The real page server, killed once 16 MiB of pages reached its images directory.
    await installWrapper(
      bed,
      bed.host2,
      WRAPPER,
      `${PAGE_SERVER_PRELUDE}p=$!
while kill -0 "$p" 2>/dev/null; do
  if [ "$(du -sk "$dir" | cut -f1)" -gt 16384 ]; then kill -9 "$p"; echo "e2e: page server killed" >&2; break; fi
  sleep 0.05
done
wait "$p"
`,
    );
    try {
      const run = await runAction(inputs());
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status).toBe('rolled-back');
      expect(['CHECKPOINT_FAILED', 'TRANSFER_FAILED']).toContain(run.outputs['error-code']);
    } finally {
      await onHostResult(bed, bed.host2, `rm -f ${WRAPPER}`);
    }
    await expectBackOnSource(before);
  });

  it('the action SIGKILLed while the pages stream: the post step rolls back, no page server or forward left on either host', async () => {
    const before = await startMemoryWorkload(bed, name, 128);
    // The real page server, stopped once 16 MiB arrived (the dump then waits on it) until released;
    // a TERM (the runner's end closing the server's command) reaches it through the wrapper.
    await installWrapper(
      bed,
      bed.host2,
      WRAPPER,
      `${PAGE_SERVER_PRELUDE}c=$!
trap 'kill -CONT "$c" 2>/dev/null; kill "$c" 2>/dev/null' TERM
while kill -0 "$c" 2>/dev/null; do
  if [ "$(du -sk "$dir" | cut -f1)" -gt 16384 ]; then
    kill -STOP "$c"; touch /tmp/e2e-held-overlap-kill
    i=0; while [ ! -e /tmp/e2e-release-overlap-kill ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    kill -CONT "$c"; break
  fi
  sleep 0.05
done
wait "$c"
`,
    );
    try {
      const running = startAction(inputs());
      await waitHeld(bed, bed.host2, 'overlap-kill', 120_000, running);
      const main = await running.kill();
      await release(bed, bed.host2, 'overlap-kill');
      const post = await runPostStep(inputs(), main);
      expect(post.exitCode, post.stdout).toBe(0);
      expect(post.stdout).toMatch(/rolled back \(source resumed\)/);
    } finally {
      await onHostResult(
        bed,
        bed.host2,
        `rm -f ${WRAPPER} /tmp/e2e-held-overlap-kill /tmp/e2e-release-overlap-kill`,
      );
    }
    await expectBackOnSource(before);
  });

  it("the target's sum of the pages differs from the source's: no restore, the source resumes intact, rolled back", async () => {
    const before = await startMemoryWorkload(bed, name, 64);
    // The target's end of the page stream hashes a changed first byte, as if one had been
    // corrupted on its way to the page server, whichever tool its hashsum picks (openssl dgst, or
    // sha256sum when it is not asked its version); every other use of either is left alone.
    for (const [tool, hashing] of Object.entries(HASHERS)) {
      await installWrapper(
        bed,
        bed.host2,
        `/usr/local/bin/${tool}`,
        `#!/bin/sh
if { [ "$1" = ${hashing} ] || [ $# -eq 0 ]; } && tr '\\0' ' ' </proc/$PPID/cmdline | grep -q 'IO::Socket::INET'; then
  { head -c 1 >/dev/null; printf X; cat; } | /usr/bin/${tool} "$@"
  exit
fi
exec /usr/bin/${tool} "$@"
`,
      );
    }
    try {
      const run = await runAction(inputs());
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status, run.stdout).toBe('rolled-back');
      expect(run.outputs['error-code']).toBe('TRANSFER_FAILED');
      expect(run.stdout).toContain(
        'the pages at the target could not be shown to be the ones the source sent',
      );
      expect(run.stdout).toMatch(
        /the source sent \d+ bytes with sha256 [0-9a-f]{64}, the target's page server got/,
      );
    } finally {
      await onHostResult(bed, bed.host2, `rm -f ${HASHER_WRAPPERS}`);
    }
    await expectBackOnSource(before);
  });

  it('a source with room for its small images but not its pages: eager (and overlap with a full /dev/shm) refused, overlap moves it', async () => {
    const before = await startMemoryWorkload(bed, name, 128);
    // 96 MiB: the small images and the 64 MiB slack fit; 128 MiB of pages (eager asks 224 MiB) do not.
    await onHost(
      bed,
      bed.host1,
      `mkdir -p ${STATE_ROOT} && mount -t tmpfs -o size=96m e2e-overlap ${STATE_ROOT}`,
    );
    try {
      // A tmpfs's files are dumped on the source even with overlap: 48 MiB in /dev/shm (asks 124 MiB).
      await onHost(bed, bed.host1, `docker exec ${name} dd if=/dev/urandom of=/dev/shm/fill bs=1M count=48`);
      const shm = await runAction(inputs());
      expect(shm.outputs['error-code'], shm.stdout).toBe('DISK_SPACE_LOW');
      expect(shm.outputs.status).toBe('refused');
      expect(shm.stdout).toMatch(/disk space for checkpoint: .*shared memory and tmpfs 48\.\d MiB/);
      await onHost(bed, bed.host1, `docker exec ${name} rm /dev/shm/fill`);

      const eager = await runAction(inputs({ memory: 'eager' }));
      expect(eager.exitCode).not.toBe(0);
      expect(eager.outputs['error-code'], eager.stdout).toBe('DISK_SPACE_LOW');
      expect(eager.outputs.status).toBe('refused');
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });

      const run = await runAction(inputs());
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.status).toBe('succeeded');
      expect(run.stdout).toMatch(/disk space for checkpoint: .*no process pages \(memory: overlap/);
    } finally {
      await onHost(bed, bed.host1, `umount ${STATE_ROOT}`);
    }
    expect(await memorySum(bed, bed.host2, name)).toBe(before);
    await expectNothingLeft(bed, name);
  });
});
