import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  daemon,
  installHold,
  installWrapper,
  listenAddress,
  RECEIVING_TAR,
  release,
  removeFaults,
  waitHeld,
} from './faults.js';
import {
  containerState,
  expectCounterContinued,
  expectNothingLeft,
  expectRunningOnlyOn,
} from './invariants.js';
import { type ActionRun, runAction, runPostStep, startAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  startCounter,
  type Testbed,
} from './testbed.js';

// The fault matrix: each fault is caused for real on the two-host test bed, and
// afterwards the container runs on exactly one host, its process went on where
// it stopped, nothing is left paused, and nothing of the run is left behind.
let bed: Testbed;
const name = 'e2e-fault';

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    container: name,
    source: bed.host1,
    target: bed.host2,
    'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
    'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
    'verify-stable-seconds': '2',
    ...extra,
  };
}

async function images(host: string): Promise<string> {
  return onHost(bed, host, 'docker images -q --no-trunc | sort');
}

/** The source resumed where it was frozen, the target clean, the error says where and what to do. */
async function expectRolledBack(
  run: ActionRun,
  code: RegExp,
  step: string,
  imagesBefore: string,
): Promise<void> {
  expect(run.outputs.status, run.stdout).toMatch(/^(rolled-back|failed)$/);
  expect(run.exitCode).toBe(1);
  expect(run.stdout).toMatch(code);
  expect(run.stdout).toContain(`step ${step}`);
  expect(run.stdout).toContain('What to do:');
  await expectRunningOnlyOn(bed, bed.host1, name);
  await expectCounterContinued(bed, bed.host1, name);
  expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  expect(await images(bed.host2)).toBe(imagesBefore);
  await expectNothingLeft(bed, name);
}

beforeAll(() => {
  bed = loadTestbed();
});

afterEach(async () => {
  await removeFaults(bed);
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

async function fresh(mb = 16): Promise<string> {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/* /tmp/ctrd-checkpoint*`,
    );
  }
  await startCounter(bed, bed.host1, name, { mb });
  return images(bed.host2);
}

describe('fault matrix', () => {
  it('1. the target dockerd stops during the transfer: source resumed; the next run removes what it could not', async () => {
    const imagesBefore = await fresh();
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'dockerd');
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'dockerd', 60_000, running);
    await daemon('stop', 'dockerd', bed.host2Pid);
    await release(bed, bed.host2, 'dockerd');
    const run = await running.done;
    // The target container could not be removed while its daemon was down: the run says so and keeps the journal open.
    expect(run.outputs.status).toBe('failed');
    expect(run.stdout).toMatch(/RESTORE_FAILED/);
    expect(run.stdout).toContain('the rollback did not finish');
    expect(run.stdout).toContain('run the action again for this container');
    await expectRunningOnlyOn(bed, bed.host1, name);
    await expectCounterContinued(bed, bed.host1, name);

    await daemon('start', 'dockerd', bed.host2Pid);
    await removeFaults(bed);
    const next = await runAction(inputs());
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.stdout).toMatch(/found an unfinished run of e2e-fault .*rolling it back/);
    const metadata = JSON.parse(readFileSync(next.outputs['metadata-path']!, 'utf8'));
    expect(metadata.resumed.direction).toBe('rollback');
    expect(metadata.resumed.done.join('\n')).toMatch(/removed container/);
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
    void imagesBefore;
  });

  it('2. the SSH connection to the target drops mid-transfer: rollback reconnects and cleans up', async () => {
    const imagesBefore = await fresh();
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'drop');
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'drop', 60_000, running);
    await daemon('kill-sessions', 'sshd', bed.host2Pid);
    await release(bed, bed.host2, 'drop');
    const run = await running.done;
    expect(run.stdout).toMatch(/SSH_DISCONNECTED|TRANSFER_FAILED/);
    await expectRolledBack(run, /SSH_DISCONNECTED|TRANSFER_FAILED/, 'transfer', imagesBefore);
    expect(run.outputs.status).toBe('rolled-back');
  });

  it('3. the target disk fills while receiving: source resumed, target clean', async () => {
    const imagesBefore = await fresh(32);
    // The images are staged in the run's work directory: on a 2 MiB file system the receiving tar runs out of space for real.
    const work = '/var/lib/criu-migrate/work';
    await onHost(
      bed,
      bed.host2,
      `(umask 077; mkdir -p ${work}) && (mountpoint -q ${work} || mount -t tmpfs -o size=2m,mode=0700 tmpfs ${work})`,
    );
    let run: ActionRun;
    try {
      run = await runAction(inputs());
      // The rollback removed the run's files from the small file system itself.
      expect(await onHost(bed, bed.host2, `ls -A ${work}`)).toBe('');
    } finally {
      await onHost(bed, bed.host2, `umount ${work}`);
    }
    expect(run.stdout).toMatch(/No space left on device/);
    await expectRolledBack(run, /TRANSFER_FAILED/, 'transfer', imagesBefore);
  });

  it('4. a corrupted checkpoint stream is detected before restore and never restored', async () => {
    const imagesBefore = await fresh();
    // One byte changed as the checkpoint enters the target (after the source hashed it), in
    // front of the perl that feeds the target's hash.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/perl',
      `#!/bin/sh
if [ -e /tmp/e2e-corrupt ] && tr '\\0' ' ' </proc/$PPID/cmdline | grep -q '/criu-migrate/work/.*/staged'; then
  { head -c 400000; head -c 1 >/dev/null; printf Z; cat; } | /usr/bin/perl "$@"
  exit $?
fi
exec /usr/bin/perl "$@"
`,
    );
    await onHost(bed, bed.host2, 'touch /tmp/e2e-corrupt');
    const run = await runAction(inputs({ compression: 'none' }));
    expect(run.stdout).not.toContain('Restore on the target');
    await expectRolledBack(run, /CHECKSUM_MISMATCH/, 'transfer', imagesBefore);
  });

  it('5. a CRIU error on restore: the restore log lines are shown, source resumed', async () => {
    const imagesBefore = await fresh();
    // A criu in front of the real one deletes pstree.img from containerd's unpacked copy.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/sbin/criu',
      `#!/bin/sh
if [ "$1" = swrk ]; then
  d=$(ls -td /tmp/ctrd-checkpoint* 2>/dev/null | head -n 1)
  [ -n "$d" ] && rm -f "$d/pstree.img"
fi
exec /usr/sbin/criu "$@"
`,
    );
    const run = await runAction(inputs());
    await expectRolledBack(
      run,
      /RESTORE_FAILED: the target could not restore the checkpoint/,
      'restore',
      imagesBefore,
    );
    expect(run.stdout).toMatch(/CRIU restore log:(.*%0A)*.*pstree/);
    expect(run.stdout).toContain(`on target ${bed.host2}`);
  });

  it('6. the restored container exits within the stability window: rolled back to the source', async () => {
    await removeFaults(bed);
    for (const host of [bed.host1, bed.host2]) {
      await onHostResult(bed, host, `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name}`);
    }
    // The same bind mount says "run" on the source and "exit" on the target.
    await onHost(bed, bed.host1, 'mkdir -p /srv/e2e-flag && echo run >/srv/e2e-flag/state');
    await onHost(bed, bed.host2, 'mkdir -p /srv/e2e-flag && echo exit >/srv/e2e-flag/state');
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v /srv/e2e-flag:/flag ${bed.image} sh -c 'i=0; while :; do grep -q exit /flag/state && exit 3; i=$((i+1)); echo "tick $i"; sleep 0.2; done'`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const imagesBefore = await images(bed.host2);
    const run = await runAction(inputs({ 'verify-stable-seconds': '5' }));
    await expect(run.stdout).toMatch(/VERIFY_FAILED: the restored container is not healthy/);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.stdout).toContain('step verify');
    await expectRunningOnlyOn(bed, bed.host1, name);
    const ticks = async () =>
      [...(await containerLogs(bed, bed.host1, name)).matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
    const before = await ticks();
    await new Promise((r) => setTimeout(r, 1000));
    const after = await ticks();
    expect(after.length).toBeGreaterThan(before.length);
    after.forEach((n, i) => {
      expect(n).toBe(i + 1);
    });
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await images(bed.host2)).toBe(imagesBefore);
    await expectNothingLeft(bed, name);
  });

  it('8. the source dump fails: the container is left running, not paused', async () => {
    await removeFaults(bed);
    for (const host of [bed.host1, bed.host2]) {
      await onHostResult(bed, host, `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name}`);
    }
    // A deleted 2 MiB file held open: over CRIU's ghost file limit, so the dump fails for real.
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -e MB=8 ${bed.image} sh -c 'dd if=/dev/zero of=/big bs=1M count=2 2>/dev/null; exec 3</big; rm /big; exec testbed-counter'`,
    );
    for (let i = 0; i < 50 && parseCounter(await containerLogs(bed, bed.host1, name)).length < 3; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const imagesBefore = await images(bed.host2);
    const run = await runAction(inputs());
    await expectRolledBack(run, /CHECKPOINT_FAILED/, 'checkpoint', imagesBefore);
    expect(run.stdout).toMatch(/ghost/i);
  });

  it('9a. two runs for the same container start together: one migrates, the other refuses', async () => {
    await fresh();
    const first = startAction(inputs(), { runId: '101' });
    const second = startAction(inputs(), { runId: '202' });
    const runs = await Promise.all([first.done, second.done]);
    const refused = runs.filter((run) => run.outputs.status === 'refused');
    const migrated = runs.filter((run) => run.outputs.status === 'succeeded');
    expect(migrated).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.stdout).toMatch(
      /MIGRATION_IN_PROGRESS: another run is working on container e2e-fault: GitHub run (101|202) attempt 1, started /,
    );
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });

  it('9b. a run SIGKILLed mid-transfer (no post step): the next run takes over its lock and rolls back first', async () => {
    await fresh();
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'sigkill');
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'sigkill', 60_000, running);
    await running.kill();
    await release(bed, bed.host2, 'sigkill');
    expect((await containerState(bed, bed.host1, name))?.Paused).toBe(true);
    await removeFaults(bed);
    const next = await runAction(inputs());
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.stdout).toMatch(/which is gone \(its process \d+ on .* has ended\); taking it over/);
    const metadata = JSON.parse(readFileSync(next.outputs['metadata-path']!, 'utf8'));
    expect(metadata.resumed.direction).toBe('rollback');
    expect(metadata.resumed.done.join('\n')).toMatch(/resumed the source container/);
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });

  it('10. both connections lost after the target was verified: the next run finishes the migration', async () => {
    await fresh();
    const [addr1, port1] = listenAddress(bed.host1);
    const [addr2, port2] = listenAddress(bed.host2);
    await installHold(bed, bed.host1, 'docker', '*" kill --signal KILL "*', 'lost');
    const running = startAction(inputs());
    try {
      await waitHeld(bed, bed.host1, 'lost', 60_000, running);
      // No new connections, then the open ones dropped: the runner is cut off from both hosts.
      await Promise.all([daemon('cut', 'sshd', bed.host1Pid), daemon('cut', 'sshd', bed.host2Pid)]);
      const run = await running.done;
      expect(run.outputs.status).toBe('succeeded');
      expect(run.outputs.leftovers).toMatch(/stopping the source .*docker kill/);
    } finally {
      await daemon('start', 'sshd', bed.host1Pid, addr1, port1);
      await daemon('start', 'sshd', bed.host2Pid, addr2, port2);
    }
    await release(bed, bed.host1, 'lost');
    // The target runs; the source is still frozen until someone finishes the job.
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    await removeFaults(bed);
    const next = await runAction(inputs());
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.outputs.status).toBe('resumed');
    expect(next.stdout).toMatch(/its target was verified: finishing it/);
    await expectRunningOnlyOn(bed, bed.host2, name);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false, Paused: false });
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });

  it('11. an error after the source was killed (docker rm fails): the target keeps running, the leftover is reported', async () => {
    await fresh();
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/docker',
      `#!/bin/sh
[ "$1" = rm ] && { echo "Error response from daemon: injected: cannot remove container" >&2; exit 1; }
exec /usr/bin/docker "$@"
`,
    );
    const run = await runAction(inputs({ 'source-after': 'remove' }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs.leftovers).toMatch(/docker rm/);
    expect(run.stdout).toMatch(/::warning::left to clean up: /);
    expect(run.summary).toContain('Left to clean up');
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false });
    // The next run finishes it once docker rm works again.
    await removeFaults(bed);
    const next = await runAction(inputs({ 'source-after': 'remove' }));
    expect(next.outputs.status, next.stdout).toBe('resumed');
    expect(await containerState(bed, bed.host1, name)).toBeUndefined();
    await expectNothingLeft(bed, name);
  });
});

describe('7. cancellation in every phase, then the post step', () => {
  const points = [
    {
      phase: 'stage',
      host: () => bed.host2,
      program: 'docker',
      glob: '*" create --env-file "*',
      committed: false,
    },
    {
      phase: 'checkpoint',
      host: () => bed.host1,
      program: 'runc',
      glob: '*" checkpoint --leave-running "*',
      committed: false,
    },
    { phase: 'transfer', host: () => bed.host2, program: 'tar', glob: RECEIVING_TAR, committed: false },
    {
      phase: 'restore',
      host: () => bed.host2,
      program: 'docker',
      glob: '*" start --checkpoint "*',
      committed: false,
    },
    { phase: 'verify', host: () => bed.host2, program: 'docker', glob: '*" top "*', committed: false },
    {
      phase: 'finalize',
      host: () => bed.host1,
      program: 'docker',
      glob: '*" kill --signal KILL "*',
      committed: true,
    },
  ] as const;
  for (const point of points) {
    it(`cancelled in ${point.phase}: running, unpaused, on exactly one host`, async () => {
      const imagesBefore = await fresh();
      const tag = `cancel-${point.phase}`;
      await installHold(bed, point.host(), point.program, point.glob, tag);
      const running = startAction(inputs());
      await waitHeld(bed, point.host(), tag, 60_000, running);
      const cancelled = running.cancel();
      await new Promise((r) => setTimeout(r, 1000));
      await release(bed, point.host(), tag);
      const main = await cancelled;
      expect(main.stdout).toContain('received SIGINT: cancelling');
      const post = await runPostStep(inputs(), main);
      expect(post.exitCode, post.stdout).toBe(0);
      if (point.committed) {
        expect(main.outputs.status).toBe('succeeded');
        await expectRunningOnlyOn(bed, bed.host2, name);
        await expectCounterContinued(bed, bed.host2, name);
      } else {
        expect(main.outputs.status, main.stdout).toBe('rolled-back');
        expect(main.stdout).toMatch(/CANCELLED: the run was cancelled \(SIGINT\)/);
        await expectRunningOnlyOn(bed, bed.host1, name);
        await expectCounterContinued(bed, bed.host1, name);
        expect(await containerState(bed, bed.host2, name)).toBeUndefined();
        expect(await images(bed.host2)).toBe(imagesBefore);
      }
      expect(post.stdout).toMatch(/nothing to do|settling it now/);
      await expectNothingLeft(bed, name);
    });
  }
});
