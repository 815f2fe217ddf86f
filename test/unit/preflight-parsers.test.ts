import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseContainerInspect } from '../../src/engine/docker/inspect.js';
import type { CommandResult } from '../../src/host/host.js';
import {
  criuErrorLines,
  formatAddress,
  missingFlags,
  parseCpuinfo,
  parseDf,
  parseDockerPsPorts,
  parseDockerSize,
  parseDuKib,
  parseIdentity,
  parseMemAvailable,
  parseMemoryProbe,
  parsePathKinds,
  parseProcNet,
  parseSections,
  sectionScript,
  TCP_ESTABLISHED,
  TCP_LISTEN,
} from '../../src/probe/parsers.js';
import {
  bindSources,
  readCpuComparison,
  readDisk,
  readSourceProbe,
  readTargetProbe,
  sourceProbeSections,
  targetProbeSections,
} from '../../src/probe/preflight-facts.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/preflight/${name}`, import.meta.url), 'utf8');
}

function result(name: string): CommandResult {
  return JSON.parse(fixture(name));
}

const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: '' });

const inspect = parseContainerInspect(fixture('inspect-pf-web.json'));
const sourceOut = fixture('source-probe-pf-web.txt');
const targetOut = fixture('target-probe-pf-web.txt');

/** The text of one section of a captured probe. */
function section(out: string, name: string): string {
  const found = parseSections(out).get(name);
  if (!found) throw new Error(`no section ${name}`);
  return found.text;
}

describe('sectionScript and parseSections', () => {
  it('run the commands at once and read every answer back in order, exit codes included', () => {
    const script = sectionScript([
      { name: 'plain', command: 'echo one; echo two' },
      { name: 'no_newline', command: "printf 'last line without newline'" },
      { name: 'fails', command: 'echo to stderr >&2; exit 3' },
      { name: 'empty', command: 'true' },
      { name: 'slow_first', command: 'sleep 0.2; echo done' },
    ]);
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
    const sections = parseSections(out);
    expect([...sections.keys()]).toEqual(['plain', 'no_newline', 'fails', 'empty', 'slow_first']);
    expect(sections.get('plain')).toEqual({ exitCode: 0, text: 'one\ntwo' });
    expect(sections.get('no_newline')).toEqual({ exitCode: 0, text: 'last line without newline' });
    expect(sections.get('fails')).toEqual({ exitCode: 3, text: 'to stderr' });
    expect(sections.get('empty')).toEqual({ exitCode: 0, text: '' });
    expect(sections.get('slow_first')).toEqual({ exitCode: 0, text: 'done' });
  });

  it('leaves nothing behind in TMPDIR', () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    execFileSync('sh', ['-c', sectionScript([{ name: 'a', command: 'echo x' }])], {
      env: { ...process.env, TMPDIR: dir },
    });
    expect(execFileSync('ls', ['-A', dir], { encoding: 'utf8' })).toBe('');
    execFileSync('rmdir', [dir]);
  });

  it('refuses section names it would have to quote', () => {
    expect(() => sectionScript([{ name: 'a b', command: 'true' }])).toThrow(/bad section name/);
  });

  it('skips a section whose end marker never came (output cut short)', () => {
    const sections = parseSections('@@begin a\nx\n\n@@end a 0\n@@begin b\npartial');
    expect([...sections.keys()]).toEqual(['a']);
  });

  it('reads every section of the captured probes', () => {
    expect([...parseSections(sourceOut).keys()]).toEqual(
      sourceProbeSections(inspect).map((entry) => entry.name),
    );
    expect([...parseSections(targetOut).keys()]).toEqual(
      targetProbeSections(inspect).map((entry) => entry.name),
    );
  });
});

describe('parseProcNet', () => {
  it('decodes the container TCP table: IPv4, IPv4-mapped IPv6, states', () => {
    const entries = parseProcNet(section(sourceOut, 'tcp'));
    expect(entries.map((e) => [formatAddress(e.local), formatAddress(e.remote), e.state])).toEqual([
      ['127.0.0.1:52882', '127.0.0.1:7000', TCP_ESTABLISHED],
      ['172.17.0.2:57528', '172.17.0.3:9000', TCP_ESTABLISHED],
      ['127.0.0.1:7000', '127.0.0.1:52882', TCP_ESTABLISHED],
    ]);
  });

  it("decodes dockerd's listeners, IPv6 wildcard compressed", () => {
    const entries = parseProcNet(section(targetOut, 'listen_tcp'));
    expect(entries.map((e) => [formatAddress(e.local), e.state])).toEqual([
      ['0.0.0.0:8080', TCP_LISTEN],
      ['[::]:8080', TCP_LISTEN],
    ]);
  });

  it('compresses IPv6 addresses and ignores rubbish', () => {
    const v6 = '   0: 000080FE00000000FF03020001000000:0050 00000000000000000000000001000000:01BB 01 0';
    expect(parseProcNet(v6).map((e) => [e.local.ip, e.remote.ip])).toEqual([['fe80::2:3ff:0:1', '::1']]);
    expect(parseProcNet('cat: /proc/1/net/tcp6: No such file or directory\n   0: zz:zz 00:00 01')).toEqual(
      [],
    );
  });
});

describe('small parsers', () => {
  it('reads df -Pk, including the tmpfs of the disk-space test', () => {
    expect(parseDf(section(targetOut, 'tmp_df').split('\n').slice(2).join('\n'))).toEqual({
      filesystem: 'tmpfs',
      sizeBytes: 12341808 * 1024,
      availableBytes: 12341796 * 1024,
      mountedOn: '/tmp',
    });
    expect(parseDf(fixture('df-tmpfs-1m.txt'))).toMatchObject({
      availableBytes: 728 * 1024,
      mountedOn: '/var/lib/criu-migrate',
    });
    expect(parseDf('df: /nope: No such file or directory\n')).toBeUndefined();
  });

  it('reads the df sections with the directory asked for and the one measured', () => {
    expect(readDisk(parseSections(sourceOut).get('state_df'), '/x')).toEqual({
      at: {
        path: '/var/lib/criu-migrate',
        measured: '/var/lib',
        disk: {
          filesystem: 'overlay',
          sizeBytes: 264212084 * 1024,
          availableBytes: 81261540 * 1024,
          mountedOn: '/',
        },
      },
    });
    expect(readDisk({ exitCode: 1, text: '/a\n/a\ndf: /a: Permission denied' }, '/a')).toEqual({
      at: { path: '/a', measured: '/a' },
      problem: 'df: df: /a: Permission denied',
    });
    expect(readDisk(undefined, '/b').problem).toBe('no answer');
  });

  it('reads du, meminfo, identity', () => {
    expect(parseDuKib(section(sourceOut, 'upper'))).toBe(16 * 1024);
    expect(parseMemAvailable(section(sourceOut, 'meminfo'))).toBe(23650764 * 1024);
    expect(parseIdentity(section(sourceOut, 'identity'))).toEqual({ uid: 0, user: 'root' });
    expect(parseIdentity('0\nroot\ndeploy\n')).toEqual({ uid: 0, user: 'root', sudoUser: 'deploy' });
    expect(parseIdentity('1000\ndeploy\n\n')).toEqual({ uid: 1000, user: 'deploy' });
    expect(parseIdentity('id: command not found')).toBeUndefined();
  });

  it('reads /proc/cpuinfo and names the flags the target lacks', () => {
    const cpu = parseCpuinfo(section(sourceOut, 'cpuinfo'));
    expect(cpu?.model).toBe('AMD EPYC');
    expect(cpu?.flags).toContain('avx512f');
    expect(cpu?.flags).not.toContain('');
    expect(parseCpuinfo('processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n')).toEqual({
      flags: ['fp', 'asimd', 'evtstrm', 'aes'],
    });
    expect(missingFlags(['sse', 'avx512f', 'sha_ni'], ['sse', 'avx2'])).toEqual(['avx512f', 'sha_ni']);
  });

  it("keeps CRIU's error lines, without timestamps, once", () => {
    expect(criuErrorLines(result('cpuinfo-check-fail.json').stdout)).toEqual([
      'Error (criu/arch/x86/cpu.c:223): cpu: CPU instruction capabilities do not match run time',
    ]);
    expect(
      criuErrorLines('(00.004839) Error (criu/x.c:1): a\nError (criu/x.c:1): a\nWarn (criu/y.c:2): b\n'),
    ).toEqual(['Error (criu/x.c:1): a']);
  });

  it('sizes as docker prints them', () => {
    expect(parseDockerSize('9.715MiB')).toBe(Math.round(9.715 * 1024 * 1024));
    expect(parseDockerSize('332KiB')).toBe(332 * 1024);
    expect(parseDockerSize('1.2GB')).toBe(1.2e9);
    expect(parseDockerSize('0B')).toBe(0);
    expect(parseDockerSize('lots')).toBeUndefined();
  });
});

describe('parseMemoryProbe', () => {
  it.each([
    ['cgroup v1 (test bed)', section(sourceOut, 'memory'), 9162752, 'cgroup v1 memory.stat rss + shmem', 0],
    [
      'cgroup v2 (kernel format)',
      'cgroup v2\nanon 52428800\nfile 1048576\nshmem 4096\nfile_mapped 0\nusage_bytes 60000000',
      52428800 + 4096,
      'cgroup v2 memory.stat anon + shmem',
      4096,
    ],
    ['usage only', 'cgroup v2\nusage_bytes 12345', 12345, 'cgroup v2 memory usage', undefined],
    [
      'docker stats fallback',
      `docker_stats ${fixture('docker-stats-memusage.txt').trim()}`,
      332 * 1024,
      'docker stats memory usage',
      undefined,
    ],
  ])('%s', (_title, text, bytes, how, shmemBytes) => {
    expect(parseMemoryProbe(text)).toEqual({
      bytes,
      how,
      ...(shmemBytes !== undefined ? { shmemBytes } : {}),
    });
  });

  it('says nothing for output it does not know', () => {
    expect(parseMemoryProbe('cat: /proc/1/cgroup: No such file or directory')).toBeUndefined();
  });
});

describe('parseDockerPsPorts and parsePathKinds', () => {
  it('reads published ports, IPv6 and ranges; skips exposed-only ports', () => {
    expect(parseDockerPsPorts(section(targetOut, 'published'))).toEqual([
      { container: 'pf-squat', hostIp: '0.0.0.0', firstPort: 8080, lastPort: 8080, proto: 'tcp' },
      { container: 'pf-squat', hostIp: '::', firstPort: 8080, lastPort: 8080, proto: 'tcp' },
    ]);
    expect(
      parseDockerPsPorts('a\t127.0.0.1:5353->53/udp, [::]:9000-9002->9000-9002/tcp, 80/tcp\nb\t\n'),
    ).toEqual([
      { container: 'a', hostIp: '127.0.0.1', firstPort: 5353, lastPort: 5353, proto: 'udp' },
      { container: 'a', hostIp: '::', firstPort: 9000, lastPort: 9002, proto: 'tcp' },
    ]);
  });

  it('reads one answer per path, in order', () => {
    expect(parsePathKinds('d\nf\n-\n', ['/a', '/b', '/c'])).toEqual(
      new Map([
        ['/a', 'directory'],
        ['/b', 'file'],
        ['/c', 'missing'],
      ]),
    );
    expect(parsePathKinds('d', ['/a', '/b']).has('/b')).toBe(false);
  });
});

describe('reading the probes', () => {
  it('reads the source probe of the test bed container', () => {
    const probe = readSourceProbe(ok(sourceOut), inspect);
    expect(probe.unreadable).toEqual({});
    expect(probe).toMatchObject({
      identity: { uid: 0, user: 'root' },
      cpu: { model: 'AMD EPYC' },
      memory: { bytes: 9162752 },
      writableLayerBytes: 16 * 1024,
      imageBytes: 2027163,
      imageConfig: { Cmd: ['sh'] },
      bindKinds: { '/srv/data': 'directory' },
      stateDir: { path: '/var/lib/criu-migrate', measured: '/var/lib', disk: { mountedOn: '/' } },
    });
    expect(probe.tcp).toHaveLength(3);
  });

  it('reads the target probe: listeners, published ports, missing bind source, volumes, image', () => {
    const root = { path: '/var/lib/docker', measured: '/var/lib/docker' };
    const probe = readTargetProbe(ok(targetOut), inspect, root);
    expect(probe.unreadable).toEqual({});
    expect(probe).toMatchObject({
      dockerRoot: root,
      restoreTmp: { path: '/tmp', disk: { filesystem: 'tmpfs' } },
      bindKinds: { '/srv/data': 'missing' },
      volumes: ['pfvol2'],
      imagePresent: true,
      nameTaken: false,
    });
    expect(probe.listeners?.tcp).toHaveLength(2);
    expect(probe.listeners?.udp).toEqual([]);
    expect(probe.published).toHaveLength(2);
    expect(probe.networks).toBeUndefined();
  });

  it('knows a missing image from the daemon error', () => {
    const out = targetOut.replace(
      /@@begin image\n[\s\S]*?@@end image 0/,
      `@@begin image\n${fixture('image-missing.txt').trim()}\n\n@@end image 1`,
    );
    const probe = readTargetProbe(ok(out), inspect, { path: '/d', measured: '/d' });
    expect(probe.imagePresent).toBe(false);
    expect(probe.unreadable).toEqual({});
  });

  it('knows the name is taken when the target answers with an ID', () => {
    const out = targetOut.replace(
      /@@begin name\n[\s\S]*?@@end name 1/,
      `@@begin name\n${inspect.Id}\n\n@@end name 0`,
    );
    expect(readTargetProbe(ok(out), inspect, { path: '/d', measured: '/d' }).nameTaken).toBe(true);
  });

  it('notes what it could not read, and keeps the rest', () => {
    const out = sourceOut
      .replace(
        /@@begin memory\n[\s\S]*?@@end memory 0/,
        '@@begin memory\ncat: /proc/1/cgroup: No such file\n\n@@end memory 1',
      )
      .replace(/@@begin upper[\s\S]*?@@end upper 0\n/, '');
    const probe = readSourceProbe(ok(out), inspect);
    expect(probe.memory).toBeUndefined();
    expect(probe.writableLayerBytes).toBeUndefined();
    expect(probe.unreadable).toEqual({ memory: 'cat: /proc/1/cgroup: No such file', upper: 'no answer' });
    expect(probe.identity?.uid).toBe(0);
  });

  it('asks only what the container raises', () => {
    const plain = structuredClone(inspect);
    plain.HostConfig.PortBindings = {};
    plain.Mounts = [];
    expect(targetProbeSections(plain).map((s) => s.name)).toEqual([
      'identity',
      'cpuinfo',
      'meminfo',
      'tmp_df',
      'state_df',
      'image',
      'name',
    ]);
    expect(targetProbeSections(undefined).map((s) => s.name)).not.toContain('image');
    expect(bindSources(inspect)).toEqual(['/srv/data']);
    const stopped = structuredClone(inspect);
    stopped.State.Running = false;
    expect(sourceProbeSections(stopped).map((s) => s.name)).not.toContain('memory');
  });
});

describe('readCpuComparison', () => {
  const dump = ok(fixture('cpuinfo-dump.b64'));

  it.each([
    [
      'same CPU',
      dump,
      result('cpuinfo-check-pass.json'),
      { dumped: true, checkExitCode: 0, checkErrors: [] },
    ],
    [
      'a CPU the target is not',
      dump,
      result('cpuinfo-check-fail.json'),
      {
        dumped: true,
        checkExitCode: 1,
        checkErrors: [
          'Error (criu/arch/x86/cpu.c:223): cpu: CPU instruction capabilities do not match run time',
        ],
        checkMessage:
          'Error (criu/arch/x86/cpu.c:223): cpu: CPU instruction capabilities do not match run time',
      },
    ],
    [
      'no criu on the source',
      result('cpuinfo-dump-no-criu.json'),
      undefined,
      { dumped: false, dumpError: 'sh: 3: criu: not found', checkErrors: [] },
    ],
  ])('%s', (_title, dumpResult, check, expected) => {
    expect(readCpuComparison(dumpResult, check)).toEqual(expected);
  });
});
