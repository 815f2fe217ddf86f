import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemon, installWrapper, listenAddress, removeFaults } from './faults.js';
import { expectCounterContinued, expectNothingLeft, expectResumedAfter } from './invariants.js';
import { runAction, startAction } from './run-action.js';
import {
  checkCounterMemory,
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// Issue 23: a workflow matrix starts many moves from one host at once. Host 1's sshd runs with
// OpenSSH's default MaxStartups (10:30:100) here: a run that meets the full start limit must be
// carried by the connect retry (STARTUP_RETRY, src/host/ssh-host.ts), and a freeze runc reports
// stuck (seen when many moves freeze at once) must be tried again.
let bed: Testbed;
/** One round; a run that takes longer than this is killed and fails the test. */
const RUN_TIMEOUT_MS = 240_000;
const BED_LIMIT = 'MaxStartups 64:30:128';
const DEFAULT_LIMIT = 'MaxStartups 10:30:100';
/** The action's warning for a connection sshd dropped before the handshake (ssh-host.ts). */
const RETRY_NOTE = /sshd closed the connection before the SSH handshake/g;
/** The container of the run that meets a full start limit for certain. */
const HELD = 'e2e-many-held';
/** The container whose first freeze runc reports stuck. */
const STUCK = 'e2e-many-stuck';

/** Rewrites host 1's MaxStartups line and restarts its sshd the way daemon.sh does (open sessions stay). */
async function setSourceLimit(line: string): Promise<void> {
  const [addr, port] = listenAddress(bed.host1);
  await onHost(bed, bed.host1, `sed -i 's/^MaxStartups .*/${line}/' /etc/ssh/sshd_config`);
  await daemon('stop', 'sshd', bed.host1Pid);
  await daemon('start', 'sshd', bed.host1Pid, addr, port);
  // What the new sshd reads, not what we meant to write.
  const effective = await onHost(bed, bed.host1, 'sshd -T -f /etc/ssh/sshd_config | grep -i ^maxstartups');
  expect(effective.trim()).toBe(line.toLowerCase());
}

/** sshd's default `full`: with this many connections in their handshake it drops every new one. */
const FULL = 100;
/**
 * Fills host 1's start slots with connections that never begin the handshake, until sshd holds
 * FULL of them. They come from an address of their own (HOLDER_ADDR): sshd penalises the
 * address of a client that leaves without authenticating (PerSourcePenalties noauth), and that
 * must not be the address the action's runs come from.
 */
const HOLDER_ADDR = '127.0.81.9';
async function holdStartSlots(): Promise<Socket[]> {
  const [addr, port] = listenAddress(bed.host1);
  const held: Socket[] = [];
  // Between `start` and `full` sshd drops at random (30% rising to 100%): a few hundred tries.
  for (let attempt = 0; attempt < 5_000 && held.length < FULL; attempt++) {
    const socket = connect({ host: addr, port: Number(port), localAddress: HOLDER_ADDR });
    // Held once sshd's session process sent its banner; dropped when sshd closes it first.
    const kept = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      socket.once('data', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
      socket.once('error', () => {});
    });
    if (kept) held.push(socket);
    else socket.destroy();
  }
  return held;
}

async function removeAll(): Promise<void> {
  const all = [HELD, STUCK];
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${all.join(' ')}; rm -rf ${all.map((n) => `/var/lib/criu-migrate/containers/${n}`).join(' ')}`,
    );
  }
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeAll();
  await setSourceLimit(DEFAULT_LIMIT);
}, 600_000);

afterAll(async () => {
  // Put the bed's limit back first, even when a test failed: every later file relies on it.
  try {
    await removeFaults(bed);
    await setSourceLimit(BED_LIMIT);
  } finally {
    await removeAll();
  }
}, 600_000);

describe('many moves from one source at once', () => {
  it('a connection sshd drops at its full start limit is tried again, and the run succeeds', async () => {
    await startCounter(bed, bed.host1, HELD, { mb: 4 });
    const held = await holdStartSlots();
    let running: ReturnType<typeof startAction> | undefined;
    try {
      expect(held.length, 'start slots held on host 1').toBe(FULL);
      running = startAction(
        {
          container: HELD,
          source: bed.host1,
          target: bed.host2,
          ...sshInputs(bed),
          'upload-artifact': 'false',
          'verify-stable-seconds': '1',
        },
        { runId: '2399' },
      );
      // The first connection to the source meets the full limit; release the slots once the run says so.
      for (let i = 0; i < 300 && !RETRY_NOTE.test(running.output()); i++) {
        RETRY_NOTE.lastIndex = 0;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      RETRY_NOTE.lastIndex = 0;
    } finally {
      for (const socket of held) socket.destroy();
    }
    if (!running) throw new Error('the run did not start');
    const run = await running.done;
    const notes = run.stdout.match(RETRY_NOTE) ?? [];
    console.log(`many-moves: the held run retried ${notes.length} time(s), ${Math.round(run.ms)} ms`);
    expect(notes.length).toBeGreaterThanOrEqual(1);
    expect(run.stdout).toContain(`source ${bed.host1}: sshd closed the connection before the SSH handshake`);
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const last = parseCounter(await containerLogs(bed, bed.host1, HELD)).at(-1);
    expect(last).toBeDefined();
    expectResumedAfter(last!, parseCounter(await containerLogs(bed, bed.host2, HELD)));
    await expectCounterContinued(bed, bed.host2, HELD);
    await checkCounterMemory(bed, bed.host2, HELD, 4 * 1024 * 1024);
    await expectNothingLeft(bed, HELD);
  }, 300_000);

  it('a freeze runc reports stuck (seen when 16 moves froze at once) is tried again, and the run succeeds', async () => {
    await startCounter(bed, bed.host1, STUCK, { mb: 4 });
    // runc's own words when the cgroup stayed FREEZING; runc thaws it before it says them, as here
    // where the first pause never froze anything. Only the first pause of the run fails.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/docker',
      `#!/bin/sh
if [ "$1" = pause ] && [ ! -e /tmp/e2e-freeze-stuck ]; then
  touch /tmp/e2e-freeze-stuck
  echo "Error response from daemon: cannot pause container $2: OCI runtime pause failed: unable to freeze: unknown" >&2
  exit 1
fi
exec /usr/bin/docker "$@"
`,
    );
    try {
      await onHost(bed, bed.host1, 'rm -f /tmp/e2e-freeze-stuck');
      const run = await runAction(
        {
          container: STUCK,
          source: bed.host1,
          target: bed.host2,
          ...sshInputs(bed),
          'upload-artifact': 'false',
          'verify-stable-seconds': '1',
        },
        { runId: '2398', timeoutMs: RUN_TIMEOUT_MS },
      );
      expect(
        await onHostResult(bed, bed.host1, 'test -e /tmp/e2e-freeze-stuck'),
        'the fault ran',
      ).toMatchObject({
        code: 0,
      });
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.status).toBe('succeeded');
      expect(run.stdout).toMatch(/::warning::docker pause: runc could not freeze .*attempt 2 of 5/);
    } finally {
      await removeFaults(bed);
      await onHostResult(bed, bed.host1, 'rm -f /tmp/e2e-freeze-stuck');
    }
    const last = parseCounter(await containerLogs(bed, bed.host1, STUCK)).at(-1);
    expect(last).toBeDefined();
    expectResumedAfter(last!, parseCounter(await containerLogs(bed, bed.host2, STUCK)));
    await expectCounterContinued(bed, bed.host2, STUCK);
    await checkCounterMemory(bed, bed.host2, STUCK, 4 * 1024 * 1024);
    await expectNothingLeft(bed, STUCK);
  }, 300_000);
});
