import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectResumedAfter } from './invariants.js';
import { runProcess } from './process.js';
import { ACTION_NODE, DIST_ENTRY, parseOutputFile, runAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
  waitForLog,
} from './testbed.js';

let bed: Testbed;
const name = 'e2e-routes';

function credentials(): Record<string, string> {
  return {
    ...sshInputs(bed),
  };
}

/** Checks that the counter moved from one host to the other without restarting. */
async function expectContinued(from: string, to: string): Promise<void> {
  const before = parseCounter(await containerLogs(bed, from, name));
  const after = parseCounter(await waitForLog(bed, to, name, /^\d+ \d{13} .*\n\d+ \d{13} /m));
  expectResumedAfter(before.at(-1)!, after);
}

/** Runs a command inside test bed host 1's own mount and UTS namespaces (its "console"). */
async function inHostOne(
  args: string[],
  env: Record<string, string>,
  input?: Buffer,
): Promise<{ code: number; out: string }> {
  const result = await runProcess(['nsenter', '-t', String(bed.host1Pid), '-m', '-u', '--', ...args], {
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    input,
  });
  return { code: result.code, out: result.stdout + result.stderr };
}

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
});

describe('other routes to the hosts', () => {
  it('reaches the target through a jump host, whose key is verified too', async () => {
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    await startCounter(bed, bed.host1, name);

    // Without a known_hosts line for the bastion, nothing is touched.
    const host1Address = bed.host1.replace(/^root@/, '').replace(/:22$/, '');
    const withoutJumpKey = readFileSync(bed.knownHostsPath, 'utf8')
      .split('\n')
      .filter((line) => !line.startsWith(`${host1Address} `))
      .join('\n');
    const refused = await runAction({
      ...credentials(),
      container: name,
      source: bed.host2,
      target: bed.host1,
      'known-hosts': withoutJumpKey,
      'jump-host': bed.host1,
    });
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(/HOST_KEY_UNKNOWN[^\n]*jump/);
    expect(refused.stdout).toMatch(/ssh-keyscan/);

    // Source reached directly, target through host 1 as the bastion.
    const run = await runAction({
      ...credentials(),
      container: name,
      source: bed.host1,
      target: bed.host2,
      'jump-host': bed.host1,
      'verify-log-pattern': '^\\d+ ',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.stdout).toMatch(/via/);
    await expectContinued(bed.host1, bed.host2);
    await onHost(bed, bed.host1, `docker rm ${name}`);

    // Back with memory: overlap, the source now behind the bastion: the page stream goes through
    // the runner and the jump host, and its pages are summed the same on both hosts.
    const back = await runAction({
      ...credentials(),
      container: name,
      source: bed.host2,
      target: bed.host1,
      'jump-host': bed.host1,
      memory: 'overlap',
      'verify-log-pattern': '^\\d+ ',
    });
    expect(back.exitCode, back.stdout).toBe(0);
    expect(back.stdout).toContain('overlap: the memory reached the target during the dump (');
    expect(back.stdout).toMatch(/overlap: \d+\.\d MiB of pages, sha256 [0-9a-f]{16}… the same on both hosts/);
    await expectContinued(bed.host2, bed.host1);
    await onHost(bed, bed.host2, `docker rm ${name}`);
  });

  it('runs with source: local on the source host itself', async () => {
    // The test above brought the counter back to host 1, which now plays the runner.
    // Install the runner's node and the bundle inside host 1, then run it there with source: local.
    const node = await inHostOne(
      ['sh', '-c', 'cat >/usr/local/bin/node && chmod 755 /usr/local/bin/node'],
      {},
      readFileSync(ACTION_NODE),
    );
    expect(node.code, node.out).toBe(0);
    const bundle = await inHostOne(
      [
        'sh',
        '-c',
        'rm -rf /opt/criu-migrate && mkdir -p /opt/criu-migrate && cat >/opt/criu-migrate/index.js',
      ],
      {},
      readFileSync(DIST_ENTRY),
    );
    expect(bundle.code, bundle.out).toBe(0);
    await inHostOne(
      [
        'sh',
        '-c',
        'cat >/opt/criu-migrate/package.json; mkdir -p /tmp/runner; : >/tmp/runner/output; : >/tmp/runner/summary.md',
      ],
      {},
      readFileSync(resolve(DIST_ENTRY, '../package.json')),
    );
    const env: Record<string, string> = {
      GITHUB_OUTPUT: '/tmp/runner/output',
      GITHUB_STEP_SUMMARY: '/tmp/runner/summary.md',
      RUNNER_TEMP: '/tmp/runner',
      INPUT_CONTAINER: name,
      INPUT_SOURCE: 'local',
      INPUT_TARGET: bed.host2,
      'INPUT_SSH-KEY': readFileSync(bed.sshKeyPath, 'utf8'),
      'INPUT_KNOWN-HOSTS': readFileSync(bed.knownHostsPath, 'utf8'),
      'INPUT_VERIFY-LOG-PATTERN': '^\\d+ ',
    };
    const run = await inHostOne(['/usr/local/bin/node', '/opt/criu-migrate/index.js'], env);
    expect(run.code, run.out).toBe(0);
    const outputs = parseOutputFile((await inHostOne(['cat', '/tmp/runner/output'], {})).out);
    expect(outputs.status).toBe('succeeded');
    expect(run.out).toMatch(/source local/);
    await expectContinued(bed.host1, bed.host2);
    await inHostOne(['rm', '-rf', '/opt/criu-migrate', '/tmp/runner', '/usr/local/bin/node'], {});
  });
});
