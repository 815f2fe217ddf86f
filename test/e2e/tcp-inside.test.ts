import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectCounterContinued, expectNothingLeft } from './invariants.js';
import { runAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  sshInputs,
  type Testbed,
  waitForLog,
} from './testbed.js';

// A service and a client connected to it over loopback, both in the container's own process
// tree: CRIU dumps the connection established (runc checkpoint --tcp-established) and restores
// it so through the restored container's CRIU configuration (tcp-established). A docker exec
// session is not part of the dump: one holding such a connection is refused by the gate.
let bed: Testbed;
const name = 'e2e-tcp-inside';
const store = '/var/lib/criu-migrate-e2e-tcp-store';

// The client sends a number every 100 ms over one connection; the service prints what it
// receives. busybox nc -l needs an open standard input to stay up.
const WORKLOAD = `sh -c '(sleep 100000 | nc -l -p 7000 &); sleep 0.5; (i=0; while :; do i=$((i+1)); echo "got $i"; sleep 0.1; done | nc 127.0.0.1 7000 &); exec testbed-counter'`;

/** The numbers the service received so far, in order. */
function received(logs: string): number[] {
  return [...logs.matchAll(/^got (\d+)$/gm)].map((m) => Number(m[1]));
}

/** Established (01) sockets with port 7000 at either end, IPv4 and IPv6 tables, in the container's namespace. */
async function establishedEnds(host: string): Promise<number> {
  const tables = await onHost(bed, host, `docker exec ${name} cat /proc/net/tcp /proc/net/tcp6`);
  return tables
    .split('\n')
    .map((line) => /^\s*\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:([0-9A-F]{4}) 01 /.exec(line))
    .filter((m) => m !== null && (m[1] === '1B58' || m[2] === '1B58')).length;
}

async function startWorkload(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  await onHost(bed, bed.host1, `docker run -d --name ${name} -e MB=8 ${bed.image} ${WORKLOAD}`);
  await waitForLog(bed, bed.host1, name, /^got 5$/m);
  expect(await establishedEnds(bed.host1)).toBe(2);
}

/** The connection carried on: the service keeps receiving the client's numbers, none missing, none repeated. */
async function expectConnectionCarriedOn(host: string, before: number[]): Promise<void> {
  const last = before.at(-1)!;
  await waitForLog(bed, host, name, new RegExp(`^got ${last + 10}$`, 'm'), 20_000);
  const after = received(await containerLogs(bed, host, name));
  const next = after.filter((n) => n > last);
  next.forEach((n, i) => {
    expect(n).toBe(last + 1 + i);
  });
  expect(await establishedEnds(host)).toBe(2);
}

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('TCP connections inside the container', () => {
  it('migrate moves them established; a docker exec process left behind is named', async () => {
    await startWorkload();
    // A session with no connection: it does not move, and the gate says so.
    await onHost(bed, bed.host1, `docker exec -d ${name} sleep 600`);
    const run = await runAction({
      mode: 'migrate',
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-timeout': '20',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(
      /tcp connections: none to outside peers; 2 over loopback inside the container, moved established/,
    );
    expect(run.stdout).toMatch(
      /docker exec processes: 1 started by docker exec, which will not move[^\n]*"sleep 600"/,
    );
    const before = received(await containerLogs(bed, bed.host1, name));
    await expectConnectionCarriedOn(bed.host2, before);
    await expectCounterContinued(bed, bed.host2, name);
    // The restore's one-off option is gone from the file once the container runs.
    const conf = await onHost(
      bed,
      bed.host2,
      `cat "$(docker inspect --format '{{index .HostConfig.Annotations "org.criu.config"}}' ${name})"`,
    );
    expect(conf).not.toMatch(/tcp-established/);
    await expectNothingLeft(bed, name);
  });

  it('checkpoint and restore keep them established', async () => {
    await startWorkload();
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    const common = { container: name, 'store-host': bed.host3, 'store-path': store, ...sshInputs(bed) };
    const taken = await runAction({
      ...common,
      mode: 'checkpoint',
      source: bed.host1,
      'checkpoint-name': 'tcp-1',
    });
    expect(taken.exitCode, taken.stdout).toBe(0);
    expect(taken.outputs.status).toBe('succeeded');
    const manifest = JSON.parse(await onHost(bed, bed.host3, `cat ${store}/${name}/tcp-1/manifest.json`));
    expect(manifest.dump).toEqual({ tcpEstablished: true });
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    const restored = await runAction({
      ...common,
      mode: 'restore',
      source: bed.host1,
      target: bed.host2,
      'verify-stable-seconds': '2',
    });
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(restored.outputs.status).toBe('succeeded');
    // Restored as of the checkpoint: the numbers go on from what the service had then.
    const after = received(await containerLogs(bed, bed.host2, name));
    expect(after.length).toBeGreaterThan(0);
    await expectConnectionCarriedOn(bed.host2, [after[0]!]);
  });

  it('a docker exec session holding a connection to the service is refused before any pause', async () => {
    await startWorkload();
    await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc -l -p 7001'`);
    // An exec'd service and an exec'd client; the client tries until the service listens.
    for (let i = 0; i < 50; i++) {
      const tcp = await onHost(bed, bed.host1, `docker exec ${name} cat /proc/net/tcp /proc/net/tcp6`);
      if (/:1B59 [0-9A-F]+:[0-9A-F]{4} 01 /.test(tcp)) break;
      await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc 127.0.0.1 7001'`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const run = await runAction({
      mode: 'migrate',
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('EXEC_SESSION_CONNECTED');
    expect(run.stdout).toMatch(
      /docker exec processes: pid \d+ "[^"]*nc[^"]*" holds 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:\d+/,
    );
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });
});
