import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemon, installWrapper, listenAddress, removeFaults } from './faults.js';
import { expectCounterContinued, expectNothingLeft, expectResumedAfter } from './invariants.js';
import { runAction } from './run-action.js';
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

// Issue 23: a workflow matrix starts many moves from one host at once, with host 1's sshd at
// OpenSSH's default MaxStartups (10:30:100). A freeze runc reports stuck (seen when 16 moves froze
// at once) must be tried again. The round of 16 and the full-start-limit test are on branch many.
let bed: Testbed;
/** A run that takes longer than this is killed and fails the test. */
const RUN_TIMEOUT_MS = 240_000;
const BED_LIMIT = 'MaxStartups 64:30:128';
const DEFAULT_LIMIT = 'MaxStartups 10:30:100';
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

async function removeAll(): Promise<void> {
  const all = [STUCK];
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
