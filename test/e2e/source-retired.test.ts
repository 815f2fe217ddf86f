import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectNothingLeft } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, type Testbed } from './testbed.js';

// Past the commit point the frozen source must never run another instruction. `docker kill` of a
// paused container signals only its init and lets runc thaw the cgroup: the other processes ran on
// until the kernel tore the PID namespace down (a moved counter printed a line on the source
// seconds after its copy on the target had printed the same number). Here six processes wake
// every 10 ms, so one that gets to run after the thaw leaves a line in the source's layer.
let bed: Testbed;
const NAME = 'e2e-retired';
const WAKERS = [1, 2, 3, 4, 5, 6];

/**
 * Each waker appends `<i> <uptime>` to /tmp/wake-<k> in the container's layer every 10 ms, with
 * builtins only (read -t on a pipe nobody writes to; /proc/uptime: one clock for every bed host).
 */
const WORKLOAD = `for k in ${WAKERS.join(' ')}; do sh -c "i=0; sleep 1000000 | while :; do i=\\$((i+1)); read -t 0.01 x; read up _ </proc/uptime; echo \\$i \\$up >>/tmp/wake-$k; done" & done; wait`;

async function removeAll(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${NAME}; rm -rf /var/lib/criu-migrate/containers/${NAME}`);
  }
}

/** The lines of /tmp/wake-<k> in the stopped container's writable layer on `host`. */
async function stoppedLines(host: string, k: number): Promise<string[]> {
  const upper = (
    await onHost(bed, host, `docker inspect --format '{{.GraphDriver.Data.UpperDir}}' ${NAME}`)
  ).trim();
  return (await onHost(bed, host, `cat ${upper}/tmp/wake-${k}`)).split('\n').filter(Boolean);
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeAll();
  await onHost(bed, bed.host1, `docker run -d --name ${NAME} ${bed.image} sh -c '${WORKLOAD}'`);
  // Every waker has written a few lines before the move.
  for (let i = 0; i < 100; i++) {
    const counts = await onHostResult(
      bed,
      bed.host1,
      `docker exec ${NAME} sh -c 'for k in ${WAKERS.join(' ')}; do wc -l </tmp/wake-$k; done'`,
    );
    const lines = counts.stdout.split('\n').filter(Boolean).map(Number);
    if (counts.code === 0 && lines.length === WAKERS.length && lines.every((n) => n >= 5)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the wakers of ${NAME} did not start`);
}, 120_000);

afterAll(async () => {
  await removeAll();
}, 120_000);

/** The move from `from` to `to`, then: nothing the source wrote after the freeze. */
async function moveAndCheck(from: string, to: string, hop: number): Promise<void> {
  const run = await runAction(
    {
      container: NAME,
      source: from,
      target: to,
      ...sshInputs(bed),
      'upload-artifact': 'false',
      'verify-stable-seconds': '1',
    },
    { runId: String(2390 + hop), timeoutMs: 240_000 },
  );
  expect(run.exitCode, run.stdout).toBe(0);
  expect(run.outputs.status).toBe('succeeded');
  expect(await containerState(bed, to, NAME)).toMatchObject({ Running: true, Paused: false });
  expect((await containerState(bed, from, NAME))?.Running).toBe(false);

  // The layer travelled while the source was frozen: the target's file is the source's as it was
  // then, plus what the copy wrote since. A line the source wrote after the freeze has the same
  // number as one of the copy's but another uptime, so it is not in the target's file there.
  for (const k of WAKERS) {
    const source = await stoppedLines(from, k);
    const target = (await onHost(bed, to, `docker exec ${NAME} cat /tmp/wake-${k}`))
      .split('\n')
      .filter(Boolean);
    const last = source.at(-1);
    expect(last, `hop ${hop}, waker ${k}: no line on the source`).toBeDefined();
    expect(
      target[source.length - 1],
      `hop ${hop}, waker ${k}: the source's last line was written after the freeze`,
    ).toBe(last);
    expect(target.length, `hop ${hop}, waker ${k}: the copy wrote nothing`).toBeGreaterThan(source.length);
  }
  await expectNothingLeft(bed, NAME);
  // The stopped source gives its name back, so the next hop can come here.
  await onHost(bed, from, `docker rm ${NAME}`);
}

describe('the source after the commit point', () => {
  // Seen in about 1 of 8 dumps on the bed by hand (docker kill after runc checkpoint --leave-running):
  // four hops, each checked.
  it('is killed while frozen: none of its processes writes another line after the move', async () => {
    await moveAndCheck(bed.host1, bed.host2, 1);
    await moveAndCheck(bed.host2, bed.host1, 2);
    await moveAndCheck(bed.host1, bed.host2, 3);
    await moveAndCheck(bed.host2, bed.host1, 4);
  }, 900_000);
});
