import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectCounterContinued } from './invariants.js';
import { runAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// Hosts without root logins: the action logs in as `migrator`, whose only privilege is the
// sudoers file the docs give (examples/sudoers/criu-migrate), and runs a preflight, a
// migration and a checkpoint through it with `sudo: true`.
const USER = 'migrator';
const SUDOERS = readFileSync(new URL('../../examples/sudoers/criu-migrate', import.meta.url), 'utf8');
const name = 'e2e-sudo';
const store = '/var/lib/criu-migrate-e2e-sudo-store';
let bed: Testbed;

/** "root@127.0.0.2:22" -> "migrator@127.0.0.2:22". */
const asUser = (destination: string): string => destination.replace(/^[^@]+@/, `${USER}@`);

/** SHA256 fingerprints (as OpenSSH prints them) of the known_hosts keys listed for a host. */
function fingerprints(destination: string): string[] {
  const [, address = '', port = '22'] = /@(.+):(\d+)$/.exec(destination) ?? [];
  const pattern = port === '22' ? address : `[${address}]:${port}`;
  return readFileSync(bed.knownHostsPath, 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([host]) => host === pattern)
    .map(([, , key = '']) => {
      const digest = createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64');
      return `SHA256:${digest.replace(/=+$/, '')}`;
    });
}

/** The action's "connected" line for a host names one of that host's real key fingerprints. */
function expectFingerprintLogged(stdout: string, role: string, destination: string): void {
  const line = stdout.split('\n').find((l) => l.includes(`${role} ${asUser(destination)}: connected`));
  expect(line, `no "connected" line for ${role} in:\n${stdout}`).toBeDefined();
  const logged = /host key (SHA256:[A-Za-z0-9+/]+)/.exec(line ?? '')?.[1];
  expect(fingerprints(destination)).toContain(logged);
}

function common(): Record<string, string> {
  return {
    container: name,
    sudo: 'true',
    ...sshInputs(bed),
    timeout: '10',
  };
}

beforeAll(async () => {
  bed = loadTestbed();
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  await startCounter(bed, bed.host1, name, { mb: 16 });
});

afterAll(async () => {
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('hosts without root logins (sudo: true)', () => {
  it('gives the login only the documented sudoers rule, and sudo refuses anything else', async () => {
    for (const host of [bed.host1, bed.host2, bed.host3]) {
      // The only rule file in sudoers.d is the documented one, byte for byte, root-owned 0440
      // (Debian's README there is comments only).
      expect(await onHost(bed, host, 'ls -A /etc/sudoers.d')).toBe('README\ncriu-migrate\n');
      expect(await onHost(bed, host, "grep -v '^#' /etc/sudoers.d/README | grep -c . || true")).toBe('0\n');
      expect(await onHost(bed, host, 'cat /etc/sudoers.d/criu-migrate')).toBe(SUDOERS);
      expect(await onHost(bed, host, 'stat -c "%U %G %a" /etc/sudoers.d/criu-migrate')).toBe(
        'root root 440\n',
      );
      const user = asUser(host);
      // sudo's own view of the login: that one rule, and no group that grants more.
      const listed = await onHost(bed, user, 'sudo -n -l');
      expect(
        listed
          .split('may run the following commands')[1]
          ?.trim()
          .split('\n')
          .slice(1)
          .map((l) => l.trim()),
      ).toEqual(['(root) NOPASSWD: /usr/bin/sh -c *']);
      expect(await onHost(bed, user, 'id -nG')).toBe(`${USER}\n`);
      // Outside the rule: refused without a prompt.
      for (const command of ['sudo -n cat /etc/shadow', 'sudo -n true', 'sudo -n bash -c id', 'sudo -n sh']) {
        const refused = await onHostResult(bed, user, command);
        expect(refused.code, `${command} as ${USER} on ${host}`).not.toBe(0);
        expect(refused.stderr).toMatch(/a password is required/);
      }
      // Not root by itself, and no Docker socket without sudo.
      expect(await onHost(bed, user, 'id -u')).not.toBe('0\n');
      // Inside the rule: root.
      expect(await onHost(bed, user, `sudo -n sh -c 'id -u; echo "$SUDO_USER"'`)).toBe(`0\n${USER}\n`);
    }
    const docker = await onHostResult(bed, asUser(bed.host1), 'docker ps');
    expect(docker.code).not.toBe(0);
    expect(docker.stderr).toMatch(/permission denied/);
  });

  it('preflights through sudo, names the sudo user, and logs both host keys', async () => {
    const run = await runAction({
      ...common(),
      mode: 'preflight',
      source: asUser(bed.host1),
      target: asUser(bed.host2),
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const report = JSON.parse(run.outputs.report ?? '{}') as {
      checks: { host: string; name: string; status: string; observed: string }[];
    };
    for (const role of ['source', 'target']) {
      const check = (checkName: string) => report.checks.find((c) => c.host === role && c.name === checkName);
      expect(check('sudo')).toMatchObject({ status: 'pass' });
      expect(check('runs as root')?.observed ?? JSON.stringify(report.checks)).toMatch(
        new RegExp(`root through sudo from ${USER}`),
      );
      const ssh = check('ssh');
      expect(ssh?.status).toBe('pass');
      const host = role === 'source' ? bed.host1 : bed.host2;
      expect(fingerprints(host).some((fp) => ssh?.observed.includes(fp))).toBe(true);
    }
  });

  it('migrates a running container through sudo, state intact, host keys logged', async () => {
    const before = parseCounter(await containerLogs(bed, bed.host1, name)).at(-1);
    const run = await runAction({
      ...common(),
      mode: 'migrate',
      source: asUser(bed.host1),
      target: asUser(bed.host2),
      'verify-log-pattern': '^\\d+ \\d{13} ',
      'verify-timeout': '20',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(/commands run through sudo -n/);
    expectFingerprintLogged(run.stdout, 'source', bed.host1);
    expectFingerprintLogged(run.stdout, 'target', bed.host2);

    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    expect((await containerState(bed, bed.host1, name))?.Running).toBe(false);
    const after = parseCounter(await containerLogs(bed, bed.host2, name));
    expect(after[0]?.token).toBe(before?.token);
    await expectCounterContinued(bed, bed.host2, name);
    // What the action wrote on the hosts belongs to root, not to the login.
    expect(await onHost(bed, bed.host2, 'stat -c "%U %a" /var/lib/criu-migrate/containers')).toMatch(
      /^root /,
    );
  });

  it('checkpoints through sudo onto a store host reached as the same user', async () => {
    const run = await runAction({
      ...common(),
      mode: 'checkpoint',
      source: asUser(bed.host2),
      'store-host': asUser(bed.host3),
      'store-path': store,
      'checkpoint-name': 'sudo-1',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const dir = `${store}/${name}/${run.outputs.series}/sudo-1`;
    expect(run.outputs.series).toMatch(/^[0-9a-f]{12}$/);
    expect(run.outputs['checkpoint-path']).toBe(dir);
    expectFingerprintLogged(run.stdout, 'source', bed.host2);
    expectFingerprintLogged(run.stdout, 'store', bed.host3);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    // Complete, root-only, and unreadable to the login that asked for it.
    expect(await onHost(bed, bed.host3, `stat -c "%U %a" ${dir}`)).toBe('root 700\n');
    const peek = await onHostResult(bed, asUser(bed.host3), `ls ${dir}`);
    expect(peek.code).not.toBe(0);
    const manifest = JSON.parse(await onHost(bed, bed.host3, `cat ${dir}/manifest.json`));
    expect(manifest).toHaveProperty('files');
  });

  it('moves it back with memory: overlap through sudo: the pages summed the same on both hosts, state intact', async () => {
    // The first move left the stopped source container on host 1.
    await onHost(bed, bed.host1, `docker rm ${name}`);
    const before = parseCounter(await containerLogs(bed, bed.host2, name)).at(-1);
    const run = await runAction({
      ...common(),
      mode: 'migrate',
      memory: 'overlap',
      source: asUser(bed.host2),
      target: asUser(bed.host1),
      'verify-log-pattern': '^\\d+ \\d{13} ',
      'verify-timeout': '20',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(/commands run through sudo -n/);
    expect(run.stdout).toMatch(/overlap: \d+\.\d MiB of pages, sha256 [0-9a-f]{16}… the same on both hosts/);
    const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    expect(metadata.checkpoint.streams.pages.bytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect((await containerState(bed, bed.host2, name))?.Running).toBe(false);
    const after = parseCounter(await containerLogs(bed, bed.host1, name));
    expect(after[0]?.token).toBe(before?.token);
    await expectCounterContinued(bed, bed.host1, name);
    for (const host of [bed.host1, bed.host2]) {
      const left = await onHostResult(bed, host, "pgrep -af '[c]riu page-server|[I]O::Socket::INET'");
      expect(left.stdout, `left on ${host}`).toBe('');
    }
  });
});
