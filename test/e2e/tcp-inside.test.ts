import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectCounterContinued } from './invariants.js';
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

// Connections inside the container (a service and a client over loopback, both in its process
// tree) are refused before any pause: runc checkpoint without --tcp-established cannot dump
// them, and with it the restored pair was reset right after the restore on this bed. Processes
// started with docker exec are not part of a checkpoint: the gate names them, and names the one
// holding a connection to the container's own processes.
let bed: Testbed;
const name = 'e2e-tcp-inside';

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

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

function migrateInputs(): Record<string, string> {
  return {
    mode: 'migrate',
    container: name,
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    'verify-timeout': '20',
  };
}

/** Refused by the gate: never paused, the same process counting on, nothing on host 2. */
async function expectUntouched(): Promise<void> {
  expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  await expectCounterContinued(bed, bed.host1, name);
  expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  const before = received(await containerLogs(bed, bed.host1, name)).at(-1)!;
  await waitForLog(bed, bed.host1, name, new RegExp(`^got ${before + 3}$`, 'm'));
}

describe('connections inside the container and docker exec sessions', () => {
  it('a connection over loopback inside the container is refused before any pause', async () => {
    await startWorkload();
    const run = await runAction(migrateInputs());
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('TCP_CONNECTIONS_OPEN');
    expect(run.stdout).toMatch(
      /tcp connections: 2 over loopback inside the container: 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:7000/,
    );
    await expectUntouched();
  });

  it('a docker exec session holding a connection to the service is named and refused', async () => {
    await startWorkload();
    await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc -l -p 7001'`);
    // The exec'd client tries until the exec'd service listens.
    for (let i = 0; i < 50; i++) {
      await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc 127.0.0.1 7001'`);
      await new Promise((r) => setTimeout(r, 300));
      const tcp = await onHost(bed, bed.host1, `docker exec ${name} cat /proc/net/tcp /proc/net/tcp6`);
      if (/:1B59 [0-9A-F]+:[0-9A-F]{4} 01 /.test(tcp)) break;
    }
    const run = await runAction(migrateInputs());
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.stdout).toMatch(
      /docker exec processes: pid \d+ "nc[^"]*" holds 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:\d+[^\n]*\n[^\n]*remedy: end that docker exec session/,
    );
    expect(run.stdout).toContain('EXEC_SESSION_CONNECTED');
    await expectUntouched();
  });

  it('a docker exec process without connections is named; the move goes on without it', async () => {
    for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
    await onHost(bed, bed.host1, `docker run -d --name ${name} -e MB=8 ${bed.image} testbed-counter`);
    await waitForLog(bed, bed.host1, name, /^5 \d{13} /m);
    await onHost(bed, bed.host1, `docker exec -d ${name} sleep 600`);
    const run = await runAction(migrateInputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(
      /docker exec processes: 1 started by docker exec, which will not move[^\n]*"sleep 600"/,
    );
    expect(run.stdout).toContain('EXEC_PROCESSES_LEFT');
    await expectCounterContinued(bed, bed.host2, name);
    const top = await onHost(bed, bed.host2, `docker top ${name} -o pid,args`);
    expect(top).not.toMatch(/sleep 600/);
  });
});
