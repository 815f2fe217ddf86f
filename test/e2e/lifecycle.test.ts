import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemon, installHold, RECEIVING_TAR, release, removeFaults, waitHeld } from './faults.js';
import {
  containerState,
  expectCounterContinued,
  expectNothingLeft,
  expectRunningOnlyOn,
} from './invariants.js';
import { type ActionRun, runAction, runPostStep, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, startCounter, type Testbed } from './testbed.js';

// What every run owes its workflow, whatever the mode and however early it stops:
// the outputs a later step tests, one error, and a post step that settles from what
// the main step saved (never from inputs a later step may have taken away).
let bed: Testbed;
const name = 'e2e-lifecycle';

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

async function fresh(): Promise<void> {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/*`,
    );
  }
  await startCounter(bed, bed.host1, name);
}

function annotations(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('::error'));
}

/** The outputs of a run stopped before anything was touched, and its one error. */
function expectRefused(run: ActionRun, code: string, label: string): void {
  expect(run.exitCode, `${label}: ${run.stdout}`).toBe(1);
  expect(run.outputs.status, label).toBe('refused');
  expect(run.outputs['error-code'], label).toBe(code);
  expect(Number(run.outputs['duration-ms']), label).toBeGreaterThanOrEqual(0);
  const path = run.outputs['metadata-path'] ?? '';
  expect(existsSync(path), `${label}: metadata-path ${path}`).toBe(true);
  const metadata = JSON.parse(readFileSync(path, 'utf8'));
  if (label.startsWith('preflight,')) {
    // Preflight's record is its report: the connection check that failed carries the code.
    expect(metadata.result, label).toBe('failed');
    expect(metadata.blockingCodes, label).toContain(code);
  } else {
    expect(metadata.run.status, label).toBe('refused');
    expect(metadata.error.code, label).toBe(code);
  }
  expect(annotations(run.stdout), label).toHaveLength(1);
}

const MODES = ['migrate', 'preflight', 'checkpoint', 'restore'] as const;

/** The hosts each mode names, with one of them replaced by `bad`. */
function hostsFor(mode: (typeof MODES)[number], bad?: string): Record<string, string> {
  switch (mode) {
    case 'migrate':
    case 'preflight':
      return { source: bad ?? bed.host1, target: bed.host2 };
    case 'checkpoint':
      return { source: bad ?? bed.host1, 'store-host': bed.host3 };
    case 'restore':
      return { target: bad ?? bed.host2, 'store-host': bed.host3 };
  }
}

describe('one run lifecycle', () => {
  it('an input error: refused with every output set and one error; the post step does nothing', async () => {
    const broken: Record<(typeof MODES)[number], Record<string, string>> = {
      migrate: { ...hostsFor('migrate'), 'verify-timeout': 'soon' },
      preflight: { ...hostsFor('preflight'), 'kernel-policy': 'sometimes' },
      checkpoint: { ...hostsFor('checkpoint'), retention: 'many' },
      restore: { ...hostsFor('restore'), 'store-path': 'relative/path' },
    };
    for (const mode of MODES) {
      const inputs = {
        mode,
        container: name,
        'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
        'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
        'upload-artifact': 'false',
        ...broken[mode],
      };
      const main = await runAction(inputs);
      expectRefused(main, 'INPUT_INVALID', mode);
      expect(main.state.isPost, mode).toBe('true');
      const post = await runPostStep(inputs, main);
      expect(post.exitCode, `${mode} post: ${post.stdout}`).toBe(0);
      expect(annotations(post.stdout), `${mode} post`).toEqual([]);
      expect(post.stdout, `${mode} post`).not.toMatch(/::warning/);
      expect(post.summary, `${mode} post`).toBe('');
      expect(post.stdout, `${mode} post`).toContain('nothing to do');
    }
  });

  it('an unreachable host, an unknown host key and a non-root login are refused in every mode', async () => {
    const key = readFileSync(bed.sshKeyPath, 'utf8');
    const knownHosts = readFileSync(bed.knownHostsPath, 'utf8');
    const host1Address = bed.host1.replace(/^.*@/, '').replace(/:22$/, '');
    const withoutHost1 = knownHosts
      .split('\n')
      .filter((line) => !line.startsWith(`${host1Address} `))
      .join('\n');
    const host2Address = bed.host2.replace(/^.*@/, '').replace(/:22$/, '');
    const withoutHost2 = knownHosts
      .split('\n')
      .filter((line) => !line.startsWith(`${host2Address} `))
      .join('\n');
    const migrator = (destination: string): string => destination.replace(/^[^@]+@/, 'migrator@');
    for (const mode of MODES) {
      const named = mode === 'restore' ? bed.host2 : bed.host1;
      const cases: [string, Record<string, string>, string][] = [
        // Nothing listens on port 1 of the loopback address: the connection is refused at once.
        [
          'unreachable',
          { ...hostsFor(mode, 'root@127.0.0.1:1'), 'known-hosts': knownHosts },
          'SSH_UNREACHABLE',
        ],
        [
          'unknown host key',
          { ...hostsFor(mode), 'known-hosts': mode === 'restore' ? withoutHost2 : withoutHost1 },
          'HOST_KEY_UNKNOWN',
        ],
        ['non-root', { ...hostsFor(mode, migrator(named)), 'known-hosts': knownHosts }, 'NOT_ROOT'],
      ];
      for (const [label, inputs, code] of cases) {
        const run = await runAction({
          mode,
          container: name,
          'ssh-key': key,
          'upload-artifact': 'false',
          ...inputs,
        });
        expectRefused(run, code, `${mode}, ${label}`);
      }
    }
  });

  it('a migration killed mid-transfer whose key file is gone by the post step: the post step settles it', async () => {
    await fresh();
    const runnerTemp = mkdtempSync(join(tmpdir(), 'criu-migrate-runner-'));
    const keyPath = join(runnerTemp, 'deploy_key');
    writeFileSync(keyPath, readFileSync(bed.sshKeyPath, 'utf8'), { mode: 0o600 });
    const inputs = {
      container: name,
      source: bed.host1,
      target: bed.host2,
      'ssh-key-path': keyPath,
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
      'upload-artifact': 'false',
    };
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'post-key');
    const running = startAction(inputs, { runnerTemp });
    await waitHeld(bed, bed.host2, 'post-key', 60_000, running);
    // The runner gives up on the main step; an `if: always()` step then deletes the key file.
    const main = await running.kill();
    await release(bed, bed.host2, 'post-key');
    rmSync(keyPath);
    expect((await containerState(bed, bed.host1, name))?.Paused).toBe(true);
    expect(JSON.stringify(main.state)).not.toContain(readFileSync(bed.sshKeyPath, 'utf8').split('\n')[1]);
    await removeFaults(bed);

    const post = await runPostStep(inputs, main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toContain('settling it now');
    expect(post.stdout).toMatch(/rolled back \(source resumed\)/);
    await expectRunningOnlyOn(bed, bed.host1, name);
    await expectCounterContinued(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    await expectNothingLeft(bed, name);
    // The post step's own copy of the key is gone with it.
    expect(readdirSync(runnerTemp).filter((entry) => entry.startsWith('criu-migrate-post-'))).toEqual([]);
  });

  it("checkpoint mode: the source's connection drops during the freeze; the same run unpauses the container", async () => {
    await fresh();
    await installHold(bed, bed.host1, 'runc', '*" checkpoint "*', 'freeze-drop');
    const running = startAction({
      mode: 'checkpoint',
      container: name,
      source: bed.host1,
      'store-host': bed.host3,
      'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
      'upload-artifact': 'false',
      'checkpoint-name': 'ckpt-drop',
    });
    let run: ActionRun;
    try {
      await waitHeld(bed, bed.host1, 'freeze-drop', 60_000, running);
      expect((await containerState(bed, bed.host1, name))?.Paused).toBe(true);
      await daemon('kill-sessions', 'sshd', bed.host1Pid);
      run = await running.done;
    } finally {
      // The held dump never runs: its wrapper goes before the release.
      await onHostResult(bed, bed.host1, "pkill -f '/usr/local/bin/runc'");
      await release(bed, bed.host1, 'freeze-drop');
    }
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.stdout).toMatch(/SSH_DISCONNECTED/);
    expect(run.outputs.status, run.stdout).toBe('rolled-back');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    await expectNothingLeft(bed, name);
    expect(
      await onHost(bed, bed.host3, `find /var/lib/criu-migrate/checkpoints -name '*ckpt-drop*' | wc -l`),
    ).toBe('0\n');
  });
});
