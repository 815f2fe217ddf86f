import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectCounterContinued } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, parseCounter, sshInputs, type Testbed } from './testbed.js';

// A TCP connection to a peer outside the container cannot move: runc checkpoint runs without
// --tcp-established, so CRIU refuses the dump ("Connected TCP socket"). The gate refuses such a
// container before anything is paused, instead of freezing it for a dump that must roll back.
let bed: Testbed;
const peer = 'e2e-tcp-peer';
const name = 'e2e-tcp-client';

beforeAll(async () => {
  bed = loadTestbed();
  await onHostResult(bed, bed.host1, `docker rm -f ${peer} ${name}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  // The peer's stdin stays open, or busybox nc would close the connection at once.
  await onHost(
    bed,
    bed.host1,
    `docker run -d --name ${peer} ${bed.image} sh -c 'sleep 100000 | nc -l -p 9000'`,
  );
  const ip = (
    await onHost(bed, bed.host1, `docker inspect -f '{{.NetworkSettings.IPAddress}}' ${peer}`)
  ).trim();
  // The connection belongs to the container's own process tree (not a docker exec), as a real client's would.
  await onHost(
    bed,
    bed.host1,
    `docker run -d --name ${name} -e MB=8 ${bed.image} sh -c '(sleep 100000 | nc ${ip} 9000 &); exec testbed-counter'`,
  );
  for (let i = 0; i < 50; i++) {
    const tcp = await onHost(bed, bed.host1, `docker exec ${name} cat /proc/net/tcp`);
    if (/^\s*\d+: [0-9A-F:]+ [0-9A-F]+:2328 01 /m.test(tcp)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the client did not connect to its peer');
});

afterAll(async () => {
  await onHostResult(bed, bed.host1, `docker rm -f ${peer} ${name}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
});

describe('a container with a TCP connection to an outside peer', () => {
  it('is refused by the gate with TCP_CONNECTIONS_OPEN before anything is paused', async () => {
    const before = parseCounter(await onHost(bed, bed.host1, `docker logs ${name} 2>&1`));
    const run = await runAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'upload-artifact': 'false',
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('TCP_CONNECTIONS_OPEN');
    expect(run.stdout).toMatch(
      /tcp connections: 1 to outside peers: 172\.\d+\.\d+\.\d+:\d+ ↔ 172\.\d+\.\d+\.\d+:9000/,
    );
    expect(run.stdout).not.toMatch(/source-paused|CHECKPOINT_FAILED/);
    // Untouched: still running on host 1, the same process, nothing created on host 2.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    const after = parseCounter(await onHost(bed, bed.host1, `docker logs ${name} 2>&1`));
    expect(after[0]?.token).toBe(before[0]?.token);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });
});
