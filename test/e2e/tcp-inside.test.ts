import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installHold, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectCounterContinued } from './invariants.js';
import {
  expectSameConnection as expectSameConnectionOf,
  replies,
  startLoopbackPair,
} from './loopback-pair.js';
import { runAction, startAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  moveInputs,
  onHost,
  onHostResult,
  sshInputs,
  type Testbed,
  waitForLog,
} from './testbed.js';

// A service and a client in the container's own process tree, talking over one loopback TCP
// connection, move with it: dumped with runc checkpoint --tcp-established, restored through the
// container's CRIU configuration file (tcp-established). Processes started with docker exec are
// not part of a checkpoint: one holding a connection to the container is refused before any
// pause, and one that connects while the gate's reading is old is caught inside the freeze.
let bed: Testbed;
const name = 'e2e-tcp-inside';
const store = '/var/lib/criu-migrate-e2e-tcp-store';

async function startWorkload(): Promise<string[]> {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  return startLoopbackPair(bed, bed.host1, name);
}

function expectSameConnection(host: string, pairs: string[], from: number): Promise<void> {
  return expectSameConnectionOf(bed, host, name, pairs, from);
}

/** Docker on host 1 saw no pause, checkpoint or stop of the container since `since` (epoch s). */
async function expectNeverPaused(since: string): Promise<void> {
  const events = await onHost(
    bed,
    bed.host1,
    `docker events --since ${since} --until "$(date +%s)" --filter container=${name} --format '{{.Action}}'`,
  );
  // Anchored: exec_die of the test's own docker exec calls is not the container's.
  expect(events.split('\n').filter((action) => /^(pause|checkpoint|die|kill|stop)/.test(action))).toEqual([]);
}

/** An exec'd service on 7001 and an exec'd client connected to it: a connection CRIU would dump one end of. */
async function connectExecSession(): Promise<void> {
  await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc -l -p 7001'`);
  // The exec'd client tries until the exec'd service listens (bounded).
  for (let i = 0; i < 50; i++) {
    await onHost(bed, bed.host1, `docker exec -d ${name} sh -c 'sleep 100000 | nc 127.0.0.1 7001'`);
    await new Promise((r) => setTimeout(r, 300));
    const tcp = await onHost(bed, bed.host1, `docker exec ${name} cat /proc/net/tcp /proc/net/tcp6`);
    if (/:1B59 [0-9A-F]+:[0-9A-F]{4} 01 /.test(tcp)) return;
  }
  throw new Error('the exec session did not connect');
}

function migrateInputs(): Record<string, string> {
  return moveInputs(bed, name, { 'verify-timeout': '20' });
}

beforeAll(() => {
  bed = loadTestbed();
});

afterEach(async () => {
  await removeFaults(bed);
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('connections inside the container and docker exec sessions', () => {
  it('migrate moves a loopback connection between its own processes established: same ends, no gap', async () => {
    const pairs = await startWorkload();
    const run = await runAction(migrateInputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(
      /tcp connections: none to outside peers; 2 over loopback inside the container: 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:7000[^\n]*moved established/,
    );
    // The source stopped at the freeze: its last reply is where the target goes on from.
    expect((await containerState(bed, bed.host1, name))?.Running ?? false).toBe(false);
    const last = replies(await containerLogs(bed, bed.host1, name)).at(-1)!;
    await expectSameConnection(bed.host2, pairs, last);
    // The restore's one-off option does not stay in the container's file for its next checkpoint.
    const conf = await onHost(
      bed,
      bed.host2,
      `cat "$(docker inspect --format '{{index .HostConfig.Annotations "org.criu.config"}}' ${name})"`,
    );
    expect(conf).not.toMatch(/tcp-established/);
  });

  it('checkpoint into the store, then restore on host 2: the connection is established there', async () => {
    const pairs = await startWorkload();
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
    expect(taken.stdout).toContain('2 over loopback inside the container, dumped and restored established');
    const manifest = JSON.parse(
      await onHost(bed, bed.host3, `cat ${taken.outputs['checkpoint-path']}/manifest.json`),
    );
    expect(manifest.dump).toEqual({ tcpEstablished: true });
    // The source runs on after its checkpoint, on the same connection.
    const atCheckpoint = replies(await containerLogs(bed, bed.host1, name)).at(-1)!;
    await expectSameConnection(bed.host1, pairs, 1);
    await waitForLog(bed, bed.host1, name, new RegExp(`^reply n ${atCheckpoint + 5}$`, 'm'));

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
    // As of the checkpoint: the numbers go on from what the client had then.
    const first = replies(await containerLogs(bed, bed.host2, name))[0]!;
    expect(first).toBeLessThanOrEqual(atCheckpoint + 1);
    await expectSameConnection(bed.host2, pairs, first);
  });

  it('a docker exec session holding a connection is named and refused before any pause', async () => {
    const pairs = await startWorkload();
    await connectExecSession();
    const since = (await onHost(bed, bed.host1, 'date +%s')).trim();
    const run = await runAction(migrateInputs());
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('EXEC_SESSION_CONNECTED');
    expect(run.stdout).toMatch(
      /docker exec processes: pid \d+ "nc 127\.0\.0\.1 7001" holds 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:7001/,
    );
    expect(run.stdout).toMatch(/remedy: end that docker exec session/);
    await expectNeverPaused(since);
    await expectSameConnection(bed.host1, pairs, 1);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });

  it('checkpoint mode refuses the same session before touching the container', async () => {
    const pairs = await startWorkload();
    await connectExecSession();
    const since = (await onHost(bed, bed.host1, 'date +%s')).trim();
    const run = await runAction({
      container: name,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
      mode: 'checkpoint',
      source: bed.host1,
      'checkpoint-name': 'tcp-exec',
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('EXEC_SESSION_CONNECTED');
    expect(run.stdout).toMatch(/pid \d+ "nc 127\.0\.0\.1 7001" holds 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:7001/);
    await expectNeverPaused(since);
    await expectSameConnection(bed.host1, pairs, 1);
  });

  it('a session that connects after the gate is caught inside the freeze and rolled back', async () => {
    const pairs = await startWorkload();
    // The gate passes (no session yet); the session connects while docker pause is held back.
    await installHold(bed, bed.host1, 'docker', '*" pause "*', 'tcp-pause');
    const running = startAction(migrateInputs());
    await waitHeld(bed, bed.host1, 'tcp-pause', 60_000, running);
    await connectExecSession();
    await release(bed, bed.host1, 'tcp-pause');
    const run = await running.done;
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('EXEC_SESSION_CONNECTED');
    expect(run.stdout).toMatch(/connections changed between the gate and the freeze/);
    expect(run.stdout).toMatch(/pid \d+ "nc 127\.0\.0\.1 7001" holds/);
    // Resumed where it stopped, on the same connection; nothing left on host 2.
    await expectSameConnection(bed.host1, pairs, 1);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
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
