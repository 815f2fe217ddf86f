import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CommandResult, Host } from '../../src/host/host.js';
import {
  CRIU_FEATURES,
  criuFeatureCommand,
  FACT_COMMANDS,
  failureText,
  gatherHostFacts,
  isCommandMissing,
  parseCommandPath,
  parseCriuCheck,
  parseCriuFeature,
  parseCriuVersion,
  parseDockerFacts,
  parseDockerInfo,
  parseDockerVersion,
  parseKernel,
  parseRuncVersion,
} from '../../src/probe/facts.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/facts/${name}`, import.meta.url), 'utf8');
}

function ok(stdout: string, stderr = ''): CommandResult {
  return { exitCode: 0, stdout, stderr };
}

function failed(exitCode: number, stderr: string, stdout = ''): CommandResult {
  return { exitCode, stdout, stderr };
}

const NOT_FOUND = (tool: string) => failed(127, `sh: 1: ${tool}: not found\n`);
// dash's `command -v` prints nothing and exits 127 for an unknown name.
const COMMAND_V_MISSING = failed(127, '');
const DAEMON_DOWN =
  'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n';

const version = (text: string | undefined) => text && { raw: text };

describe('tool presence', () => {
  it('knows a missing command by exit 127 or sudo/bash wording', () => {
    expect(isCommandMissing(NOT_FOUND('criu'))).toBe(true);
    expect(isCommandMissing(COMMAND_V_MISSING)).toBe(true);
    expect(isCommandMissing(failed(1, 'sudo: criu: command not found\n'))).toBe(true);
    expect(isCommandMissing(failed(1, DAEMON_DOWN))).toBe(false);
    expect(isCommandMissing(ok('x'))).toBe(false);
  });

  it('reads command -v output, only absolute paths', () => {
    expect(parseCommandPath(ok('/usr/sbin/criu\n'))).toBe('/usr/sbin/criu');
    expect(parseCommandPath(COMMAND_V_MISSING)).toBeUndefined();
    expect(parseCommandPath(ok('criu\n'))).toBeUndefined();
    expect(parseCommandPath(ok("alias criu='criu -v4'\n"))).toBeUndefined();
  });

  it('says why a command failed in one line', () => {
    expect(failureText(failed(1, `first\n${DAEMON_DOWN}\n`))).toBe(DAEMON_DOWN.trim());
    expect(failureText(failed(2, '', 'only stdout\n'))).toBe('only stdout');
    expect(failureText(failed(3, ''))).toBe('exit code 3');
    expect(failureText(failed(-1, 'partial'))).toBe('timed out');
  });
});

describe('parseKernel', () => {
  it('reads the test bed kernel', () => {
    expect(parseKernel(ok('6.18.44-fc-v782\n'), ok('x86_64\n'))).toEqual({
      release: '6.18.44-fc-v782',
      version: { major: 6, minor: 18, patch: 44, raw: '6.18.44-fc-v782' },
      arch: 'x86_64',
    });
  });

  it('reads a Debian kernel', () => {
    const facts = parseKernel(ok('6.1.0-28-amd64\n'), ok('aarch64\n'));
    expect(facts.version).toMatchObject({ major: 6, minor: 1, patch: 0 });
    expect(facts.arch).toBe('aarch64');
    expect(facts.error).toBeUndefined();
  });

  it('records a failure instead of throwing', () => {
    const facts = parseKernel(failed(1, 'uname: boom\n'), ok('x86_64\n'));
    expect(facts.release).toBeUndefined();
    expect(facts.error).toBe('uname -r: uname: boom');
  });
});

describe('parseCriuVersion', () => {
  it.each([
    ['Version: 3.17.1\n', '3.17.1'],
    ['Version: 4.1.1\n', '4.1.1'],
    ['Version: 4.2.1\n', '4.2.1'],
    ['Version: 4.2\nGitID: v4.2-27-g0d2ba4b31\n', '4.2'],
    ['criu: Version: 4.2\n', '4.2'],
  ])('reads %j', (stdout, raw) => {
    expect(parseCriuVersion(stdout)?.raw).toBe(raw);
  });

  it.each([[''], ['GitID: v4.2\n'], ['sh: 1: criu: not found\n']])('finds no version in %j', (stdout) => {
    expect(parseCriuVersion(stdout)).toBeUndefined();
  });
});

describe('parseCriuCheck', () => {
  it('passes CRIU 4.2.1 in a VM without hardware breakpoints (captured)', () => {
    const result = parseCriuCheck(
      ok('Looks good.\n', "Warn  (criu/cr-check.c:1595): Hardware breakpoints don't seem to work\n"),
    );
    expect(result).toEqual({
      ok: true,
      exitCode: 0,
      summary: 'Looks good.',
      tail: ["Warn  (criu/cr-check.c:1595): Hardware breakpoints don't seem to work", 'Looks good.'],
    });
  });

  it('keeps the error line of a failing check', () => {
    const result = parseCriuCheck(
      failed(
        1,
        [
          'Error (criu/cr-check.c:1082): Kernel does not support PTRACE_GET_RSEQ_CONFIGURATION',
          'Error (criu/cr-check.c:1090): Looks like your kernel misses some features',
          '',
        ].join('\n'),
      ),
    );
    expect(result.ok).toBe(false);
    expect(result.exitCode).toBe(1);
    expect(result.summary).toBe('Error (criu/cr-check.c:1090): Looks like your kernel misses some features');
    expect(result.tail).toHaveLength(2);
  });

  it('names a timeout', () => {
    expect(parseCriuCheck(failed(-1, '')).summary).toBe('timed out');
  });
});

describe('parseCriuFeature', () => {
  it('reads the captured answers', () => {
    expect(parseCriuFeature(ok('uffd-noncoop is supported\n'))).toBe(true);
    expect(
      parseCriuFeature(
        failed(1, 'Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n'),
      ),
    ).toBe(false);
    // An older CRIU that does not know the feature: not "unsupported", just unknown.
    expect(
      parseCriuFeature(failed(1, 'Error (criu/cr-check.c:1901): Unknown feature uffd-noncoop\n')),
    ).toBeUndefined();
    // CRIU 4.2.1 in the test bed's VM, where hardware breakpoints do not work.
    expect(
      parseCriuFeature(failed(1, "Warn  (criu/cr-check.c:1595): Hardware breakpoints don't seem to work\n")),
    ).toBe(false);
  });

  it('has one command per feature', () => {
    expect(CRIU_FEATURES.map(criuFeatureCommand)).toEqual([
      'criu check --feature mem_dirty_track',
      'criu check --feature uffd-noncoop',
      'criu check --feature breakpoints',
    ]);
  });
});

describe('parseRuncVersion', () => {
  it('reads runc 1.1.15 (captured)', () => {
    expect(parseRuncVersion(fixture('runc-1.1.15-version.txt'))).toMatchObject({
      major: 1,
      minor: 1,
      patch: 15,
      raw: '1.1.15+ds1',
    });
  });

  it('reads an upstream build and rejects noise', () => {
    expect(parseRuncVersion('runc version 1.2.5\ncommit: v1.2.5-0-g59923ef\n')?.raw).toBe('1.2.5');
    expect(parseRuncVersion('')).toBeUndefined();
  });
});

describe('parseDockerVersion', () => {
  it.each([
    ['docker-26.1.5-version.json', '26.1.5+dfsg1', '1.45', '1.7.24~ds1', '1.1.15+ds1', true],
    ['docker-28.5.1-version.json', '28.5.1+dfsg1', '1.51', '2.1.4~ds1', '1.3.0+ds1', true],
    ['docker-20.10.24-version.json', '20.10.24+dfsg1', '1.41', '1.6.20~ds1', '1.1.5+ds1', undefined],
  ])('reads %s', (file, server, api, containerd, runc, experimental) => {
    const facts = parseDockerVersion(fixture(file));
    expect(facts).toMatchObject({
      serverVersion: version(server),
      apiVersion: api,
      containerdVersion: version(containerd),
      runcVersion: version(runc),
    });
    expect(facts?.experimental).toBe(experimental);
  });

  it('has nothing without a server', () => {
    expect(parseDockerVersion(fixture('docker-unreachable-version.json'))).toBeUndefined();
    expect(parseDockerVersion('')).toBeUndefined();
    expect(parseDockerVersion('not json')).toBeUndefined();
    expect(parseDockerVersion('[1,2]')).toBeUndefined();
  });

  it('falls back to Server.Version without components', () => {
    expect(parseDockerVersion('{"Server":{"Version":"27.3.1","ApiVersion":"1.47"}}')).toEqual({
      serverVersion: { major: 27, minor: 3, patch: 1, raw: '27.3.1' },
      apiVersion: '1.47',
    });
  });
});

describe('parseDockerInfo', () => {
  it('reads the test bed daemon (captured)', () => {
    expect(parseDockerInfo(fixture('docker-26.1.5-info.json'))).toEqual({
      experimental: true,
      defaultRuntime: 'runc',
      runtimes: ['io.containerd.runc.v2', 'runc'],
      cgroupVersion: '1',
      cgroupDriver: 'cgroupfs',
      storageDriver: 'overlay2',
      rootDir: '/var/lib/docker',
      containerdImageStore: false,
      serverVersion: { major: 26, minor: 1, patch: 5, raw: '26.1.5+dfsg1' },
    });
  });

  it('reads bookworm 20.10 with experimental off', () => {
    expect(parseDockerInfo(fixture('docker-20.10.24-info.json'))).toMatchObject({
      experimental: false,
      cgroupVersion: '2',
      cgroupDriver: 'systemd',
      runtimes: ['io.containerd.runc.v2', 'io.containerd.runtime.v1.linux', 'runc'],
    });
  });

  it('sees the containerd image store and another default runtime', () => {
    expect(parseDockerInfo(fixture('docker-29.0.1-containerd-store-info.json'))).toMatchObject({
      storageDriver: 'overlayfs',
      containerdImageStore: true,
      defaultRuntime: 'crun',
      runtimes: ['crun', 'io.containerd.runc.v2', 'runc'],
    });
  });

  it('has nothing when the daemon did not answer', () => {
    expect(parseDockerInfo(fixture('docker-unreachable-info.json'))).toBeUndefined();
    expect(parseDockerInfo('{"ServerVersion":"26.1.5","ServerErrors":["boom"]}')).toBeUndefined();
    expect(parseDockerInfo('')).toBeUndefined();
  });
});

describe('parseDockerFacts', () => {
  it('combines version and info', () => {
    const facts = parseDockerFacts(
      ok(fixture('docker-26.1.5-version.json')),
      ok(fixture('docker-26.1.5-info.json')),
    );
    expect(facts).toMatchObject({
      present: true,
      reachable: true,
      serverVersion: version('26.1.5+dfsg1'),
      containerdVersion: version('1.7.24~ds1'),
      runcVersion: version('1.1.15+ds1'),
      experimental: true,
      defaultRuntime: 'runc',
      storageDriver: 'overlay2',
      containerdImageStore: false,
    });
    expect(facts.error).toBeUndefined();
  });

  it('records a missing client', () => {
    expect(parseDockerFacts(NOT_FOUND('docker'), NOT_FOUND('docker'))).toEqual({
      present: false,
      reachable: false,
      runtimes: [],
      error: 'sh: 1: docker: not found',
    });
  });

  it('records an unreachable daemon (captured)', () => {
    const facts = parseDockerFacts(
      failed(1, DAEMON_DOWN, fixture('docker-unreachable-version.json')),
      failed(1, DAEMON_DOWN, fixture('docker-unreachable-info.json')),
    );
    expect(facts).toEqual({ present: true, reachable: false, runtimes: [], error: DAEMON_DOWN.trim() });
  });

  it('keeps the version when only docker info fails', () => {
    const facts = parseDockerFacts(
      ok(fixture('docker-20.10.24-version.json')),
      failed(1, 'permission denied\n'),
    );
    expect(facts).toMatchObject({ reachable: true, serverVersion: version('20.10.24+dfsg1') });
    expect(facts.experimental).toBeUndefined();
    expect(facts.error).toBe('docker info: permission denied');
  });
});

/** A Host answering from a table; anything else is "not found", like sh. */
function fakeHost(answers: Record<string, CommandResult>): Host & { calls: string[] } {
  const calls: string[] = [];
  return {
    role: 'source',
    address: 'root@192.0.2.10:22',
    calls,
    async run(command) {
      calls.push(command);
      const answer = answers[command];
      if (answer) return answer;
      if (command.startsWith('command -v ')) return COMMAND_V_MISSING;
      return NOT_FOUND(command.split(' ')[0] ?? command);
    },
    async spawn() {
      throw new Error('not used by gatherHostFacts');
    },
    async close() {},
  };
}

const TESTBED_HOST: Record<string, CommandResult> = {
  [FACT_COMMANDS.kernelRelease]: ok('6.18.44-fc-v782\n'),
  [FACT_COMMANDS.machine]: ok('x86_64\n'),
  [FACT_COMMANDS.criuPath]: ok('/usr/sbin/criu\n'),
  [FACT_COMMANDS.criuVersion]: ok('Version: 4.2.1\n'),
  [FACT_COMMANDS.criuCheck]: ok(
    'Looks good.\n',
    "Warn  (criu/cr-check.c:1595): Hardware breakpoints don't seem to work\n",
  ),
  [criuFeatureCommand('mem_dirty_track')]: failed(
    1,
    'Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n',
  ),
  [criuFeatureCommand('uffd-noncoop')]: ok('uffd-noncoop is supported\n'),
  [criuFeatureCommand('breakpoints')]: failed(
    1,
    "Warn  (criu/cr-check.c:1595): Hardware breakpoints don't seem to work\n",
  ),
  [FACT_COMMANDS.runcPath]: ok('/usr/sbin/runc\n'),
  [FACT_COMMANDS.runcVersion]: ok(fixture('runc-1.1.15-version.txt')),
  [FACT_COMMANDS.dockerVersion]: ok(fixture('docker-26.1.5-version.json')),
  [FACT_COMMANDS.dockerInfo]: ok(fixture('docker-26.1.5-info.json')),
};

describe('gatherHostFacts', () => {
  it('gathers the facts of a test bed host', async () => {
    const host = fakeHost(TESTBED_HOST);
    const facts = await gatherHostFacts(host);
    expect(facts).toMatchObject({
      host: 'source root@192.0.2.10:22',
      kernel: { release: '6.18.44-fc-v782', arch: 'x86_64' },
      criu: {
        present: true,
        path: '/usr/sbin/criu',
        version: version('4.2.1'),
        check: { ok: true, summary: 'Looks good.' },
        features: { mem_dirty_track: false, 'uffd-noncoop': true, breakpoints: false },
      },
      runc: { present: true, path: '/usr/sbin/runc', version: version('1.1.15+ds1') },
      docker: {
        present: true,
        reachable: true,
        serverVersion: version('26.1.5+dfsg1'),
        experimental: true,
        cgroupVersion: '1',
        rootDir: '/var/lib/docker',
      },
    });
    expect(facts.criu.error).toBeUndefined();
    // Only read-only queries, each once.
    expect([...host.calls].sort()).toEqual(Object.keys(TESTBED_HOST).sort());
  });

  it('records a bare host without throwing and asks CRIU nothing more', async () => {
    const host = fakeHost({
      [FACT_COMMANDS.kernelRelease]: ok('6.1.0-28-amd64\n'),
      [FACT_COMMANDS.machine]: ok('x86_64\n'),
    });
    const facts = await gatherHostFacts(host);
    expect(facts.criu).toEqual({ present: false, features: {}, error: 'criu not found in PATH' });
    expect(facts.runc).toEqual({ present: false, error: 'runc not found in PATH' });
    expect(facts.docker).toMatchObject({
      present: false,
      reachable: false,
      error: 'sh: 1: docker: not found',
    });
    expect(host.calls).not.toContain(FACT_COMMANDS.criuCheck);
    expect(host.calls).not.toContain(FACT_COMMANDS.runcVersion);
  });

  it('records CRIU whose version it cannot read', async () => {
    const host = fakeHost({
      ...TESTBED_HOST,
      [FACT_COMMANDS.criuVersion]: failed(1, 'criu: error while loading shared libraries: libnet.so.9\n'),
    });
    const facts = await gatherHostFacts(host);
    expect(facts.criu.present).toBe(true);
    expect(facts.criu.version).toBeUndefined();
    expect(facts.criu.error).toBe('criu --version: criu: error while loading shared libraries: libnet.so.9');
  });

  it('records a daemon that is down', async () => {
    const host = fakeHost({
      ...TESTBED_HOST,
      [FACT_COMMANDS.dockerVersion]: failed(1, DAEMON_DOWN, fixture('docker-unreachable-version.json')),
      [FACT_COMMANDS.dockerInfo]: failed(1, DAEMON_DOWN, fixture('docker-unreachable-info.json')),
    });
    const facts = await gatherHostFacts(host);
    expect(facts.docker).toEqual({
      present: true,
      reachable: false,
      runtimes: [],
      error: DAEMON_DOWN.trim(),
    });
  });
});
