import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installHold, installWrapper, release, removeFaults, waitHeld } from './faults.js';
import { expectNothingLeft, expectRunningOnlyOn } from './invariants.js';
import { runAction, startAction } from './run-action.js';
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

// Memory images and the container's environment are secrets: root-only on
// disk, never on a command line, never in anything the action writes.
let bed: Testbed;
const name = 'e2e-secrets';
const secret = `s3cret-${Date.now().toString(36)}-value`;
const passphrase = `pass-${Date.now().toString(36)}-phrase`;
const pemName = 'e2e-secrets-pem';
const ARGV_LOG = '/tmp/e2e-docker-argv.log';
const SUDO_LOG = '/var/log/e2e-sudo.log';
// sudo's own log of every command it runs, unwrapped, for the duration of one test.
const SUDO_LOG_DEFAULTS = [`Defaults logfile=${SUDO_LOG}`, 'Defaults loglinelen=0'];
const shellWords = (lines: string[]): string => lines.map((line) => `'${line}'`).join(' ');
// Lines of a multi-line secret, each one recognisable on its own.
const pemLines = [0, 1, 2].map((i) => `pem${i}-${Date.now().toString(36)}-Zm9vYmFy'"$(id)`);

/** "mode type path" for everything under the given paths on a host. */
async function modes(host: string, paths: string[]): Promise<string[]> {
  const out = await onHost(bed, host, `find ${paths.join(' ')} -printf '%m %y %p\\n' 2>/dev/null; true`);
  return out.split('\n').filter(Boolean);
}

function expectPrivate(listing: string[]): void {
  expect(listing.length).toBeGreaterThan(0);
  for (const line of listing) {
    const [mode, type] = line.split(' ');
    // A link's own mode means nothing; the staged pages it points to are listed with the work directory.
    if (type === 'l') continue;
    expect(`${mode} ${type}`, line).toBe(type === 'd' ? '700 d' : '600 f');
  }
}

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name} ${pemName}; rm -f ${ARGV_LOG} /tmp/e2e-pem`);
  }
});

describe('secrets and memory images', () => {
  it('keeps images 0700/0600, the environment off command lines, and secrets out of every output', async () => {
    await removeFaults(bed);
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    await startCounter(bed, bed.host1, name, { mb: 8, extraArgs: `-e API_TOKEN=${secret}` });
    // The same key, encrypted: the passphrase is a secret too.
    const dir = mkdtempSync(join(tmpdir(), 'criu-migrate-key-'));
    const keyPath = join(dir, 'key');
    execFileSync('cp', [bed.sshKeyPath, keyPath]);
    execFileSync('ssh-keygen', ['-q', '-p', '-N', passphrase, '-f', keyPath]);
    const key = readFileSync(keyPath, 'utf8');
    const keyLine = key.split('\n')[2]!;

    await installHold(bed, bed.host2, 'docker', '*" create --env-file "*', 'create');
    const running = startAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      'ssh-key': key,
      'ssh-passphrase': passphrase,
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
      'verify-stable-seconds': '1',
    });
    await waitHeld(bed, bed.host2, 'create', 60_000, running);
    // docker create is running now: its command line names a file, not the values.
    const processes = await onHost(bed, bed.host2, 'ps -eo args');
    expect(processes).toContain('create --env-file');
    expect(processes).not.toContain(secret);
    const envFiles = await modes(bed.host2, ['/var/lib/criu-migrate/work']);
    expectPrivate(envFiles);
    expect(envFiles.some((line) => line.endsWith('/create/env'))).toBe(true);

    await installHold(bed, bed.host2, 'docker', '*" start --checkpoint "*', 'restore');
    await release(bed, bed.host2, 'create');
    await waitHeld(bed, bed.host2, 'restore', 60_000, running);
    // Mid-run, with the memory images on both hosts.
    const id = (await onHost(bed, bed.host2, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    const sourceImages = await modes(bed.host1, ['/var/lib/criu-migrate/work']);
    expectPrivate(sourceImages);
    expect(sourceImages.some((line) => /\/images\/pages-\d+\.img$/.test(line))).toBe(true);
    const targetImages = await modes(bed.host2, [
      `/var/lib/docker/containers/${id}/checkpoints`,
      '/var/lib/criu-migrate/work',
    ]);
    expectPrivate(targetImages);
    // Docker's checkpoint directory links the pages staged in the run's work directory.
    expect(targetImages.some((line) => /^777 l .*\/checkpoints\/.*\/pages-\d+\.img$/.test(line))).toBe(true);
    expect(targetImages.some((line) => /^600 f .*\/work\/.*\/staged\/pages-\d+\.img$/.test(line))).toBe(true);
    expect(targetImages.some((line) => line.endsWith('/create/env'))).toBe(false);
    expectPrivate(await modes(bed.host1, [`/var/lib/criu-migrate/containers/${name}`]));
    await release(bed, bed.host2, 'restore');

    const run = await running.done;
    expect(run.exitCode, run.stdout).toBe(0);
    await expectRunningOnlyOn(bed, bed.host2, name);
    const env = JSON.parse(await onHost(bed, bed.host2, `docker inspect -f '{{json .Config.Env}}' ${name}`));
    expect(env).toContain(`API_TOKEN=${secret}`);
    await expectNothingLeft(bed, name);

    // Everything the action wrote: log (less the runner's own mask commands), outputs, summary,
    // metadata, saved state, and the journals on both hosts.
    const written = [
      run.stdout
        .split('\n')
        .filter((line) => !line.startsWith('::add-mask::'))
        .join('\n'),
      run.stderr,
      JSON.stringify(run.outputs),
      run.summary,
      readFileSync(run.outputs['metadata-path']!, 'utf8'),
      JSON.stringify(run.state),
      await onHost(bed, bed.host1, `cat /var/lib/criu-migrate/containers/${name}/history/*.json`),
      await onHost(bed, bed.host2, `cat /var/lib/criu-migrate/containers/${name}/history/*.json`),
    ].join('\n');
    expect(written.length).toBeGreaterThan(1000);
    for (const value of [secret, passphrase, keyLine]) expect(written).not.toContain(value);
    // The masks were asked for.
    expect(run.stdout).toContain(`::add-mask::${passphrase}`);
  });

  it('carries a multi-line secret to docker create off every command line, and intact into the restored process', async () => {
    await removeFaults(bed);
    await onHostResult(bed, bed.host2, `docker rm -f ${pemName}; rm -f ${ARGV_LOG}`);
    // Quotes, a shell substitution and a CR LF: all must arrive as they were, nothing run.
    const pem = `-----BEGIN TEST KEY-----\n${pemLines.join('\n')}\r\n-----END TEST KEY-----\n`;
    await onHost(
      bed,
      bed.host1,
      [
        `docker rm -f ${pemName} >/dev/null 2>&1`,
        `printf %s ${Buffer.from(pem).toString('base64')} | base64 -d >/tmp/e2e-pem`,
        'v="$(cat /tmp/e2e-pem; printf x)"',
        `docker run -d --name ${pemName} -e MB=8 -e "PEM_KEY=\${v%x}" ${bed.image} testbed-counter`,
      ].join('\n'),
    );
    for (let i = 0; i < 100 && parseCounter(await containerLogs(bed, bed.host1, pemName)).length < 5; i++)
      await new Promise((resolve) => setTimeout(resolve, 200));
    // Every docker call on the target logged with its arguments; docker create held so ps sees it.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/docker',
      `#!/bin/sh
printf '%s\\n' "$*" >>${ARGV_LOG}
case " $* " in
  *" create --env-file "*)
    touch /tmp/e2e-held-pemcreate
    i=0
    while [ ! -e /tmp/e2e-release-pemcreate ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done ;;
esac
exec /usr/bin/docker "$@"
`,
    );
    await onHost(bed, bed.host2, 'rm -f /tmp/e2e-held-pemcreate /tmp/e2e-release-pemcreate');
    const running = startAction({
      container: pemName,
      source: bed.host1,
      target: bed.host2,
      'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
      'verify-stable-seconds': '1',
    });
    await waitHeld(bed, bed.host2, 'pemcreate', 60_000, running);
    const processes = await onHost(bed, bed.host2, 'ps -eo args');
    expect(processes).toContain('create --env-file');
    // The value is in the held docker's environment (root only), not in any argument.
    const held = await onHost(
      bed,
      bed.host2,
      `for p in $(pgrep -f 'create --env-file'); do tr '\\0' '\\n' </proc/$p/environ | grep -c '^PEM_KEY=' || true; done`,
    );
    expect(held.split('\n').some((count) => Number(count) > 0)).toBe(true);
    await release(bed, bed.host2, 'pemcreate');
    const run = await running.done;
    expect(run.exitCode, run.stdout).toBe(0);
    await expectRunningOnlyOn(bed, bed.host2, pemName);

    const argv = await onHost(bed, bed.host2, `cat ${ARGV_LOG}`);
    expect(argv).toContain('create --env-file');
    for (const line of pemLines) {
      expect(processes).not.toContain(line);
      expect(argv).not.toContain(line);
    }
    // Byte for byte: what Docker stored, and the restored process's own environment.
    const env = JSON.parse(
      await onHost(bed, bed.host2, `docker inspect -f '{{json .Config.Env}}' ${pemName}`),
    );
    expect(env).toContain(`PEM_KEY=${pem}`);
    const environ = await onHost(bed, bed.host2, `docker exec ${pemName} cat /proc/1/environ | base64 -w0`);
    const entries = Buffer.from(environ, 'base64').toString('utf8').split('\0');
    expect(entries).toContain(`PEM_KEY=${pem}`);
    await expectNothingLeft(bed, pemName);
  });

  it("keeps the multi-line secret out of sudo's log too, when the hosts are reached through sudo", async () => {
    // Run after the test above: the container with the secret runs on host 2 and goes back to
    // host 1, where its stopped source is removed first.
    await onHost(bed, bed.host1, `docker rm -f ${pemName}`);
    const pem = `-----BEGIN TEST KEY-----\n${pemLines.join('\n')}\r\n-----END TEST KEY-----\n`;
    await onHost(
      bed,
      bed.host1,
      `printf '%s\\n' ${shellWords(SUDO_LOG_DEFAULTS)} >>/etc/sudoers && visudo -c >/dev/null && rm -f ${SUDO_LOG}`,
    );
    try {
      const run = await runAction({
        container: pemName,
        source: bed.host2.replace(/^[^@]+@/, 'migrator@'),
        target: bed.host1.replace(/^[^@]+@/, 'migrator@'),
        sudo: 'true',
        ...sshInputs(bed),
        'verify-stable-seconds': '1',
      });
      expect(run.exitCode, run.stdout).toBe(0);
      await expectRunningOnlyOn(bed, bed.host1, pemName);
      const log = await onHost(bed, bed.host1, `cat ${SUDO_LOG}`);
      // sudo logged every command, docker create's among them, with its whole script.
      expect(log).toContain('docker create --env-file');
      for (const line of pemLines) expect(log).not.toContain(line);
      const env = JSON.parse(
        await onHost(bed, bed.host1, `docker inspect -f '{{json .Config.Env}}' ${pemName}`),
      );
      expect(env).toContain(`PEM_KEY=${pem}`);
    } finally {
      await onHost(
        bed,
        bed.host1,
        `grep -vxF ${SUDO_LOG_DEFAULTS.map((line) => `-e '${line}'`).join(' ')} /etc/sudoers >/tmp/e2e-sudoers; cat /tmp/e2e-sudoers >/etc/sudoers; rm -f /tmp/e2e-sudoers ${SUDO_LOG}`,
      );
    }
  });
});
