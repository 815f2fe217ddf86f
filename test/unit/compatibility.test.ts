import { describe, expect, it } from 'vitest';
import {
  type Check,
  COMPATIBILITY_RULES,
  type CompatibilityRule,
  evaluateCompatibility,
  type FactsPair,
  failures,
  warnings,
} from '../../src/policy/compatibility.js';
import { parseVersion, type Version } from '../../src/policy/versions.js';
import type { CriuFacts, DockerFacts, HostFacts, KernelFacts } from '../../src/probe/facts.js';
import type { KernelPolicy } from '../../src/settings.js';

function v(text: string): Version {
  const parsed = parseVersion(text);
  if (!parsed) throw new Error(`bad test version ${text}`);
  return parsed;
}

interface HostOverrides {
  kernel?: Partial<KernelFacts>;
  criu?: Partial<CriuFacts>;
  docker?: Partial<DockerFacts>;
}

/** A host like the test bed's: everything a migration needs. */
function host(role: 'source' | 'target', overrides: HostOverrides = {}): HostFacts {
  return {
    host: `${role} root@192.0.2.${role === 'source' ? 1 : 2}:22`,
    kernel: {
      release: '6.18.44-fc-v782',
      version: v('6.18.44-fc-v782'),
      arch: 'x86_64',
      ...overrides.kernel,
    },
    criu: {
      present: true,
      path: '/usr/sbin/criu',
      version: v('4.2.1'),
      check: { ok: true, exitCode: 0, tail: ['Looks good.'], summary: 'Looks good.' },
      features: { mem_dirty_track: false, 'uffd-noncoop': true },
      ...overrides.criu,
    },
    runc: { present: true, path: '/usr/sbin/runc', version: v('1.1.15+ds1') },
    docker: {
      present: true,
      reachable: true,
      serverVersion: v('26.1.5+dfsg1'),
      apiVersion: '1.45',
      containerdVersion: v('1.7.24~ds1'),
      runcVersion: v('1.1.15+ds1'),
      experimental: true,
      defaultRuntime: 'runc',
      runtimes: ['io.containerd.runc.v2', 'runc'],
      cgroupVersion: '2',
      cgroupDriver: 'systemd',
      storageDriver: 'overlay2',
      rootDir: '/var/lib/docker',
      containerdImageStore: false,
      ...overrides.docker,
    },
  };
}

function pair(source: HostOverrides = {}, target: HostOverrides = {}): FactsPair {
  return { source: host('source', source), target: host('target', target) };
}

function evaluate(facts: FactsPair, kernelPolicy: KernelPolicy = 'same-minor'): Check[] {
  return evaluateCompatibility(facts, { kernelPolicy });
}

function find(checks: Check[], name: string, where: Check['host']): Check | undefined {
  return checks.find((c) => c.name === name && c.host === where);
}

describe('evaluateCompatibility', () => {
  it('passes two test bed hosts', () => {
    const checks = evaluate(pair());
    expect(failures(checks)).toEqual([]);
    expect(warnings(checks)).toEqual([]);
    expect(checks.map((c) => `${c.host} ${c.name}`)).toEqual([
      'source criu installed',
      'target criu installed',
      'source criu vs kernel vDSO',
      'target criu vs kernel vDSO',
      'source criu hardware breakpoints',
      'target criu hardware breakpoints',
      'source criu check',
      'target criu check',
      'source criu features',
      'target criu features',
      'both criu versions',
      'source docker',
      'target docker',
      'source docker experimental',
      'target docker experimental',
      'source docker restore',
      'target docker restore',
      'source docker default runtime',
      'target docker default runtime',
      'source docker storage',
      'target docker storage',
      'both kernel versions',
      'both cgroup versions',
      'source cgroup restore route',
      'target cgroup restore route',
      'both cpu architecture',
    ]);
    for (const check of checks) {
      expect(check.observed).not.toBe('');
      expect(check.expected).not.toBe('');
    }
  });

  it('defaults to the same-minor kernel policy', () => {
    const facts = pair({}, { kernel: { release: '6.19.1', version: v('6.19.1') } });
    expect(failures(evaluateCompatibility(facts)).map((c) => c.code)).toEqual(['KERNEL_MISMATCH']);
  });

  it('runs extra rules handed to it', () => {
    const extra: CompatibilityRule = () => [
      { host: 'both', name: 'extra', status: 'warn', observed: 'x', expected: 'y' },
    ];
    const checks = evaluateCompatibility(pair(), { kernelPolicy: 'any' }, [...COMPATIBILITY_RULES, extra]);
    expect(checks.at(-1)?.name).toBe('extra');
  });
});

interface Case {
  title: string;
  facts: FactsPair;
  policy?: KernelPolicy;
  name: string;
  host: Check['host'];
  status: Check['status'] | 'absent';
  code?: string;
  /** Text the observed value or the remedy must contain. */
  mentions?: RegExp;
}

const CASES: Case[] = [
  // CRIU present
  {
    title: 'CRIU missing on the target',
    facts: pair(
      {},
      {
        criu: {
          present: false,
          path: undefined,
          version: undefined,
          check: undefined,
          features: {},
          error: 'criu not found in PATH',
        },
      },
    ),
    name: 'criu installed',
    host: 'target',
    status: 'fail',
    code: 'CRIU_MISSING',
    mentions: /criu not found in PATH/,
  },
  {
    title: 'no CRIU, no further CRIU checks',
    facts: pair({ criu: { present: false, version: undefined, check: undefined } }),
    name: 'criu check',
    host: 'source',
    status: 'absent',
  },
  // vDSO
  {
    title: 'bookworm CRIU 3.17.1 on kernel 6.18',
    facts: pair({ criu: { version: v('3.17.1') } }),
    name: 'criu vs kernel vDSO',
    host: 'source',
    status: 'fail',
    code: 'CRIU_TOO_OLD',
    mentions: /vDSO area bounds/,
  },
  {
    title: 'CRIU 3.17.1 on kernel 6.1 is fine for the vDSO',
    facts: pair({
      kernel: { release: '6.1.0-28-amd64', version: v('6.1.0-28-amd64') },
      criu: { version: v('3.17.1') },
    }),
    name: 'criu vs kernel vDSO',
    host: 'source',
    status: 'pass',
  },
  {
    title: 'unreadable CRIU version',
    facts: pair({}, { criu: { version: undefined } }),
    name: 'criu vs kernel vDSO',
    host: 'target',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  // hardware breakpoints
  {
    title: 'trixie CRIU 4.1.1 on kernel 6.18',
    facts: pair({}, { criu: { version: v('4.1.1') } }),
    name: 'criu hardware breakpoints',
    host: 'target',
    status: 'fail',
    code: 'CRIU_TOO_OLD',
    mentions: /hardware breakpoints/,
  },
  {
    title: 'CRIU 3.17.1 on 6.18 fails once, under the vDSO rule',
    facts: pair({ criu: { version: v('3.17.1') } }),
    name: 'criu hardware breakpoints',
    host: 'source',
    status: 'absent',
  },
  {
    title: 'CRIU 4.1.1 on kernel 6.12',
    facts: pair({
      kernel: { release: '6.12.48+deb13-amd64', version: v('6.12.48+deb13-amd64') },
      criu: { version: v('4.1.1') },
    }),
    name: 'criu hardware breakpoints',
    host: 'source',
    status: 'pass',
  },
  {
    title: 'CRIU 4.2 git build on kernel 6.18',
    facts: pair({ criu: { version: v('4.2') } }),
    name: 'criu hardware breakpoints',
    host: 'source',
    status: 'pass',
  },
  // criu check
  {
    title: 'criu check failing',
    facts: pair({
      criu: {
        check: {
          ok: false,
          exitCode: 1,
          tail: ['Error (criu/cr-check.c:1090): Looks like your kernel misses some features'],
          summary: 'Error (criu/cr-check.c:1090): Looks like your kernel misses some features',
        },
      },
    }),
    name: 'criu check',
    host: 'source',
    status: 'fail',
    code: 'CRIU_CHECK_FAILED',
    mentions: /exit 1: Error \(criu\/cr-check.c:1090\): Looks like your kernel misses some features/,
  },
  // CRIU order
  {
    title: 'target CRIU older than the source',
    facts: pair({ criu: { version: v('4.2.1') } }, { criu: { version: v('4.2') } }),
    name: 'criu versions',
    host: 'both',
    status: 'fail',
    code: 'CRIU_TARGET_OLDER',
    mentions: /source 4\.2\.1, target 4\.2/,
  },
  {
    title: 'target CRIU newer than the source',
    facts: pair({ criu: { version: v('4.2') } }, { criu: { version: v('4.2.1') } }),
    name: 'criu versions',
    host: 'both',
    status: 'pass',
  },
  // Docker present
  {
    title: 'no docker client',
    facts: pair({ docker: { present: false, reachable: false, error: 'sh: 1: docker: not found' } }),
    name: 'docker',
    host: 'source',
    status: 'fail',
    code: 'DOCKER_MISSING',
    mentions: /docker: not found/,
  },
  {
    title: 'daemon not running',
    facts: pair({}, { docker: { reachable: false, error: 'Cannot connect to the Docker daemon' } }),
    name: 'docker',
    host: 'target',
    status: 'fail',
    code: 'DOCKER_MISSING',
    mentions: /Cannot connect/,
  },
  {
    title: 'no daemon, no daemon checks',
    facts: pair({}, { docker: { reachable: false } }),
    name: 'docker experimental',
    host: 'target',
    status: 'absent',
  },
  // experimental
  {
    title: 'experimental off',
    facts: pair({}, { docker: { experimental: false } }),
    name: 'docker experimental',
    host: 'target',
    status: 'fail',
    code: 'DOCKER_NOT_EXPERIMENTAL',
    mentions: /"experimental": true.*daemon\.json/,
  },
  {
    title: 'experimental unknown',
    facts: pair({ docker: { experimental: undefined } }),
    name: 'docker experimental',
    host: 'source',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  // restore
  {
    // Docker 28/29 restore host-network containers; the network route check decides the rest.
    title: 'Docker 28.5 target',
    facts: pair({}, { docker: { serverVersion: v('28.5.1+dfsg1'), containerdVersion: v('2.1.4~ds1') } }),
    name: 'docker restore',
    host: 'target',
    status: 'pass',
    mentions: /moby#50750/,
  },
  {
    title: 'Docker 29 source',
    facts: pair({ docker: { serverVersion: v('29.0.1') } }),
    name: 'docker restore',
    host: 'source',
    status: 'pass',
  },
  {
    title: 'Docker 27 target',
    facts: pair({}, { docker: { serverVersion: v('27.5.1') } }),
    name: 'docker restore',
    host: 'target',
    status: 'pass',
  },
  {
    title: 'Docker 20.10 is not verified',
    facts: pair({}, { docker: { serverVersion: v('20.10.24+dfsg1') } }),
    name: 'docker restore',
    host: 'target',
    status: 'warn',
    code: 'DOCKER_UNTESTED',
    mentions: /not verified/,
  },
  {
    title: 'a future Docker is not verified',
    facts: pair({}, { docker: { serverVersion: v('30.0.0') } }),
    name: 'docker restore',
    host: 'target',
    status: 'warn',
    code: 'DOCKER_UNTESTED',
  },
  // runtime
  {
    title: 'crun as default runtime',
    facts: pair({}, { docker: { defaultRuntime: 'crun' } }),
    name: 'docker default runtime',
    host: 'target',
    status: 'fail',
    code: 'RUNTIME_UNSUPPORTED',
    mentions: /runc checkpoint directly/,
  },
  {
    title: 'runtime unknown',
    facts: pair({ docker: { defaultRuntime: undefined } }),
    name: 'docker default runtime',
    host: 'source',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  // storage
  {
    title: 'containerd image store',
    facts: pair({}, { docker: { storageDriver: 'overlayfs', containerdImageStore: true } }),
    name: 'docker storage',
    host: 'target',
    status: 'fail',
    code: 'STORAGE_DRIVER_UNSUPPORTED',
    mentions: /containerd-snapshotter/,
  },
  {
    title: 'btrfs graph driver',
    facts: pair({ docker: { storageDriver: 'btrfs' } }),
    name: 'docker storage',
    host: 'source',
    status: 'fail',
    code: 'STORAGE_DRIVER_UNSUPPORTED',
    mentions: /upper directory/,
  },
  // kernel policy
  ...(
    [
      ['6.18.44-fc-v782', 'same-minor', 'pass'],
      ['6.18.44-fc-v782', 'exact', 'pass'],
      ['6.18.45-fc-v790', 'same-minor', 'warn'],
      ['6.18.45-fc-v790', 'exact', 'fail'],
      ['6.18.45-fc-v790', 'any', 'pass'],
      ['6.12.48+deb13-amd64', 'same-minor', 'fail'],
      ['6.12.48+deb13-amd64', 'exact', 'fail'],
      ['6.12.48+deb13-amd64', 'any', 'pass'],
      ['7.18.44', 'same-minor', 'fail'],
    ] as const
  ).map(
    ([release, policy, status]): Case => ({
      title: `target kernel ${release} under ${policy}`,
      facts: pair({}, { kernel: { release, version: v(release) } }),
      policy,
      name: 'kernel versions',
      host: 'both',
      status,
      ...(status === 'pass' ? {} : { code: 'KERNEL_MISMATCH' }),
    }),
  ),
  {
    title: 'Debian ABI bump is a patch-level difference',
    facts: pair(
      { kernel: { release: '6.1.0-28-amd64', version: v('6.1.0-28-amd64') } },
      { kernel: { release: '6.1.0-29-amd64', version: v('6.1.0-29-amd64') } },
    ),
    policy: 'same-minor',
    name: 'kernel versions',
    host: 'both',
    status: 'warn',
    code: 'KERNEL_MISMATCH',
  },
  {
    title: 'kernel unreadable',
    facts: pair({}, { kernel: { release: undefined, version: undefined } }),
    name: 'kernel versions',
    host: 'both',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  // cgroups
  {
    title: 'cgroup v1 source, v2 target',
    facts: pair({ docker: { cgroupVersion: '1' } }),
    name: 'cgroup versions',
    host: 'both',
    status: 'fail',
    code: 'CGROUP_MISMATCH',
    mentions: /source cgroup v1, target cgroup v2/,
  },
  {
    title: 'cgroup v2 source, v1 target',
    facts: pair({}, { docker: { cgroupVersion: '1', cgroupDriver: 'cgroupfs' } }),
    name: 'cgroup versions',
    host: 'both',
    status: 'fail',
    code: 'CGROUP_MISMATCH',
    mentions: /source cgroup v2, target cgroup v1/,
  },
  {
    title: 'cgroup v2 target, runc 1.1, systemd driver: the CRIU configuration route',
    facts: pair(),
    name: 'cgroup restore route',
    host: 'target',
    status: 'pass',
    mentions: /org\.criu\.config/,
  },
  {
    title: 'cgroup v2 target, runc 1.3: runc sets the cgroup itself',
    facts: pair({}, { docker: { runcVersion: v('1.3.6+ds1') } }),
    name: 'cgroup restore route',
    host: 'target',
    status: 'pass',
    mentions: /runc moves the restored process/,
  },
  {
    title: 'cgroup v2 target, runc 1.1, Docker without annotations',
    facts: pair({}, { docker: { apiVersion: '1.41', serverVersion: v('20.10.24') } }),
    name: 'cgroup restore route',
    host: 'target',
    status: 'fail',
    code: 'CGROUP2_RESTORE_UNSUPPORTED',
    mentions: /Docker API 1\.41 has no container annotations/,
  },
  {
    title: 'cgroup v2 target, runc 1.1, unknown cgroup driver',
    facts: pair({}, { docker: { cgroupDriver: 'none' } }),
    name: 'cgroup restore route',
    host: 'target',
    status: 'fail',
    code: 'CGROUP2_RESTORE_UNSUPPORTED',
    mentions: /cgroup driver none/,
  },
  {
    title: 'cgroup v2 source that could not be a target: reported, not refused',
    facts: pair({ docker: { apiVersion: '1.41' } }),
    name: 'cgroup restore route',
    host: 'source',
    status: 'pass',
    mentions: /as a target it could not/,
  },
  {
    title: 'cgroup v1 target: runc handles it',
    facts: pair(
      { docker: { cgroupVersion: '1' } },
      { docker: { cgroupVersion: '1', cgroupDriver: 'cgroupfs' } },
    ),
    name: 'cgroup restore route',
    host: 'target',
    status: 'pass',
    mentions: /cgroup v1: runc restores/,
  },
  // architecture
  {
    title: 'x86_64 to aarch64',
    facts: pair({}, { kernel: { arch: 'aarch64' } }),
    name: 'cpu architecture',
    host: 'both',
    status: 'fail',
    code: 'CPU_INCOMPATIBLE',
  },
];

describe.each(CASES)('$title', ({ facts, policy, name, host: where, status, code, mentions }) => {
  it(`gives ${name} [${where}] ${status}`, () => {
    const check = find(evaluate(facts, policy), name, where);
    if (status === 'absent') {
      expect(check).toBeUndefined();
      return;
    }
    expect(check?.status).toBe(status);
    expect(check?.code).toBe(code);
    if (status !== 'pass') expect(check?.remedy).toBeTruthy();
    if (mentions) expect(`${check?.observed}\n${check?.remedy}`).toMatch(mentions);
  });
});
