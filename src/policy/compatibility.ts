import type { ErrorCode } from '../errors.js';
import type { HostFacts } from '../probe/facts.js';
import { type CpuFacts, missingFlags } from '../probe/parsers.js';
import type { CpuComparison } from '../probe/preflight-facts.js';
import type { KernelPolicy } from '../settings.js';
import { planRestoreConfig, restoreFactsOf, restoreRouteProblem } from './criu-config.js';
import { UPSTREAM_ISSUES } from './network-route.js';
import { atLeast, compareVersions, majorMinor, type Version } from './versions.js';

export type CheckHost = 'source' | 'target' | 'both';
export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface Check {
  host: CheckHost;
  name: string;
  status: CheckStatus;
  observed: string;
  expected: string;
  remedy?: string;
  code?: ErrorCode;
}

export interface FactsPair {
  source: HostFacts;
  target: HostFacts;
  /** The preflight gate's CPU comparison; rules about it stay silent without it. */
  cpu?: CpuPairFacts;
}

export interface CpuPairFacts {
  comparison?: CpuComparison;
  /** /proc/cpuinfo of each host, to name the features that differ. */
  source?: CpuFacts;
  target?: CpuFacts;
}

export interface CompatibilityOptions {
  kernelPolicy: KernelPolicy;
}

/** One rule: facts in, zero or more checks out. Returning none means "not applicable". */
export type CompatibilityRule = (facts: FactsPair, options: CompatibilityOptions) => Check[];

type Role = 'source' | 'target';

/** Lifts a rule about one host into a rule about both. */
function eachHost(rule: (facts: HostFacts, role: Role) => Check | undefined): CompatibilityRule {
  return (pair) => {
    const checks: Check[] = [];
    for (const role of ['source', 'target'] as const) {
      const check = rule(pair[role], role);
      if (check) checks.push(check);
    }
    return checks;
  };
}

function show(version: Version | undefined): string {
  return version?.raw ?? 'unknown';
}

// Kernel 6.13 split the vvar area; CRIU older than 4.1 fails with "Unexpected rt vDSO area bounds".
export const VDSO_SPLIT_KERNEL = '6.13';
export const CRIU_FOR_NEW_VDSO = '4.1';
// CRIU 4.2 detects VMs whose hardware breakpoints do not work; older ones hang in the parasite there.
export const CRIU_FOR_BROKEN_BREAKPOINTS = '4.2';

const INSTALL_CRIU =
  'install CRIU 4.2 or later on this host (Debian: criu from sid/unstable or a newer suite; or build it from criu.org) and make sure root finds it in PATH';

// --- CRIU --------------------------------------------------------------------------------------

export const criuInstalled = eachHost((facts, role) => {
  const { criu } = facts;
  if (criu.present) {
    return {
      host: role,
      name: 'criu installed',
      status: 'pass',
      observed: `${criu.path ?? 'criu'} ${show(criu.version)}`,
      expected: 'criu in PATH',
    };
  }
  return {
    host: role,
    name: 'criu installed',
    status: 'fail',
    observed: `not found${criu.error ? ` (${criu.error})` : ''}`,
    expected: 'criu in PATH',
    remedy: INSTALL_CRIU,
    code: 'CRIU_MISSING',
  };
});

export const criuKnowsKernelVdso = eachHost((facts, role) => {
  const { criu, kernel } = facts;
  if (!criu.present) return undefined;
  const name = 'criu vs kernel vDSO';
  const expected = `criu >= ${CRIU_FOR_NEW_VDSO} on kernels >= ${VDSO_SPLIT_KERNEL}`;
  const observed = `kernel ${kernel.release ?? 'unknown'}, criu ${show(criu.version)}`;
  if (!kernel.version || !criu.version) {
    return {
      host: role,
      name,
      status: 'warn',
      observed,
      expected,
      remedy: 'could not read the versions; see the facts',
      code: 'FACT_UNREADABLE',
    };
  }
  if (!atLeast(kernel.version, VDSO_SPLIT_KERNEL) || atLeast(criu.version, CRIU_FOR_NEW_VDSO)) {
    return { host: role, name, status: 'pass', observed, expected };
  }
  return {
    host: role,
    name,
    status: 'fail',
    observed,
    expected,
    remedy: `${INSTALL_CRIU}: kernels from ${VDSO_SPLIT_KERNEL} lay out the vDSO differently and older CRIU fails with "Unexpected rt vDSO area bounds"`,
    code: 'CRIU_TOO_OLD',
  };
});

export const criuSurvivesBrokenBreakpoints = eachHost((facts, role) => {
  const { criu, kernel } = facts;
  if (!criu.present || !criu.version) return undefined;
  // Too old for the vDSO as well: that rule already failed with the same remedy.
  if (
    kernel.version &&
    atLeast(kernel.version, VDSO_SPLIT_KERNEL) &&
    !atLeast(criu.version, CRIU_FOR_NEW_VDSO)
  )
    return undefined;
  const name = 'criu hardware breakpoints';
  const remedy = `${INSTALL_CRIU}: in virtual machines where hardware breakpoints do not work, CRIU before ${CRIU_FOR_BROKEN_BREAKPOINTS} hangs inside the parasite during the dump (${CRIU_FOR_BROKEN_BREAKPOINTS} detects this)`;
  const working = criu.features.breakpoints;
  if (working !== undefined) {
    // CRIU 4.2 and later answer `criu check --feature breakpoints`: no need to guess.
    const observed = `hardware breakpoints ${working ? 'work' : 'do not work'}, criu ${show(criu.version)}`;
    const expected = `working hardware breakpoints, or criu >= ${CRIU_FOR_BROKEN_BREAKPOINTS}`;
    if (working || atLeast(criu.version, CRIU_FOR_BROKEN_BREAKPOINTS))
      return { host: role, name, status: 'pass', observed, expected };
    return { host: role, name, status: 'fail', observed, expected, remedy, code: 'CRIU_TOO_OLD' };
  }
  if (!kernel.version) return undefined;
  const expected = `criu >= ${CRIU_FOR_BROKEN_BREAKPOINTS} on kernels >= ${VDSO_SPLIT_KERNEL}`;
  const observed = `kernel ${kernel.release ?? 'unknown'}, criu ${show(criu.version)}`;
  // An older CRIU cannot tell whether hardware breakpoints work (they do not in many VMs),
  // so on the kernels where 4.2 is available at all we ask for it.
  if (!atLeast(kernel.version, VDSO_SPLIT_KERNEL) || atLeast(criu.version, CRIU_FOR_BROKEN_BREAKPOINTS)) {
    return { host: role, name, status: 'pass', observed, expected };
  }
  return { host: role, name, status: 'fail', observed, expected, remedy, code: 'CRIU_TOO_OLD' };
});

/** What `criu check --feature` said; informational, since no pre-dump or lazy pages are used. */
export const criuFeatures = eachHost((facts, role) => {
  const known = Object.entries(facts.criu.features);
  if (!facts.criu.present || known.length === 0) return undefined;
  return {
    host: role,
    name: 'criu features',
    status: 'pass',
    observed: known.map(([feature, on]) => `${feature} ${on ? 'yes' : 'no'}`).join(', '),
    expected:
      'informational: the migration needs none of them (no pre-dump, which needs mem_dirty_track; no lazy pages, which need uffd-noncoop)',
  };
});

export const criuCheckPasses = eachHost((facts, role) => {
  const { criu } = facts;
  if (!criu.present || !criu.check) return undefined;
  const { check } = criu;
  if (check.ok) {
    return {
      host: role,
      name: 'criu check',
      status: 'pass',
      observed: check.summary,
      expected: 'criu check exits 0',
    };
  }
  return {
    host: role,
    name: 'criu check',
    status: 'fail',
    observed: `exit ${check.exitCode}: ${check.summary}`,
    expected: 'criu check exits 0',
    remedy:
      'run `criu check` as root on this host and fix what it reports (kernel options, permissions, a too old CRIU)',
    code: 'CRIU_CHECK_FAILED',
  };
});

export const criuTargetNotOlder: CompatibilityRule = ({ source, target }) => {
  const from = source.criu.version;
  const to = target.criu.version;
  if (!source.criu.present || !target.criu.present || !from || !to) return [];
  const observed = `source ${from.raw}, target ${to.raw}`;
  const expected = "target CRIU at least the source's";
  if (compareVersions(to, from) >= 0)
    return [{ host: 'both', name: 'criu versions', status: 'pass', observed, expected }];
  return [
    {
      host: 'both',
      name: 'criu versions',
      status: 'fail',
      observed,
      expected,
      remedy: `upgrade CRIU on the target to ${from.raw} or later: an older CRIU may not read images written by a newer one`,
      code: 'CRIU_TARGET_OLDER',
    },
  ];
};

// --- Docker ------------------------------------------------------------------------------------

export const dockerReachable = eachHost((facts, role) => {
  const { docker } = facts;
  const expected = 'docker CLI and a running dockerd';
  if (!docker.present) {
    return {
      host: role,
      name: 'docker',
      status: 'fail',
      observed: `docker not found${docker.error ? ` (${docker.error})` : ''}`,
      expected,
      remedy: 'install Docker Engine and its CLI (26.1 is verified: docker.io from Debian trixie)',
      code: 'DOCKER_MISSING',
    };
  }
  if (!docker.reachable) {
    return {
      host: role,
      name: 'docker',
      status: 'fail',
      observed: `daemon not reachable${docker.error ? `: ${docker.error}` : ''}`,
      expected,
      remedy: 'start dockerd and let the SSH user use it (log in as root, or set sudo: true)',
      code: 'DOCKER_MISSING',
    };
  }
  const api = docker.apiVersion ? ` (API ${docker.apiVersion})` : '';
  return {
    host: role,
    name: 'docker',
    status: 'pass',
    observed: `Docker ${show(docker.serverVersion)}${api}`,
    expected,
  };
});

/** Rules about a daemon only make sense when it answered; dockerReachable reports the rest. */
function withDaemon(rule: (facts: HostFacts, role: Role) => Check | undefined): CompatibilityRule {
  return eachHost((facts, role) => (facts.docker.reachable ? rule(facts, role) : undefined));
}

export const dockerExperimental = withDaemon(({ docker }, role) => {
  const name = 'docker experimental';
  const expected = 'experimental: true (docker start --checkpoint needs it)';
  const remedy = 'set "experimental": true in /etc/docker/daemon.json and restart dockerd';
  if (docker.experimental === true) return { host: role, name, status: 'pass', observed: 'on', expected };
  if (docker.experimental === undefined) {
    return {
      host: role,
      name,
      status: 'warn',
      observed: 'unknown (docker info unreadable)',
      expected,
      remedy,
      code: 'FACT_UNREADABLE',
    };
  }
  return {
    host: role,
    name,
    status: 'fail',
    observed: 'off',
    expected,
    remedy,
    code: 'DOCKER_NOT_EXPERIMENTAL',
  };
});

const WORKING_DOCKER =
  'Docker 26.1 with containerd 1.7 and runc 1.1 (verified), 27.x likely; 28.x with containerd 2.1 and runc 1.3 (verified: host network directly, other networks through a network holder)';

export const dockerCanRestore = withDaemon(({ docker }, role) => {
  const name = 'docker restore';
  const version = docker.serverVersion;
  const parts = [
    `Docker ${show(version)}`,
    docker.containerdVersion && `containerd ${docker.containerdVersion.raw}`,
    docker.runcVersion && `runc ${docker.runcVersion.raw}`,
  ].filter((p): p is string => typeof p === 'string');
  const observed = parts.join(', ');
  if (!version) {
    return {
      host: role,
      name,
      status: 'warn',
      observed,
      expected: WORKING_DOCKER,
      remedy: 'could not read the Docker version',
      code: 'FACT_UNREADABLE',
    };
  }
  if (version.major === 28 || version.major === 29) {
    // Which containers it can restore depends on their network: the network route check decides.
    return {
      host: role,
      name,
      status: 'pass',
      observed: `${observed} (restores containers with their own network namespace only through a network holder: ${UPSTREAM_ISSUES})`,
      expected: WORKING_DOCKER,
    };
  }
  if (version.major === 26 || version.major === 27) {
    return { host: role, name, status: 'pass', observed, expected: WORKING_DOCKER };
  }
  return {
    host: role,
    name,
    status: 'warn',
    observed,
    expected: WORKING_DOCKER,
    remedy: `checkpoint and restore are not verified with Docker ${version.major}.x; 26.1 is`,
    code: 'DOCKER_UNTESTED',
  };
});

export const dockerDefaultRuntime = withDaemon(({ docker }, role) => {
  const observed = docker.defaultRuntime ?? 'unknown';
  const expected = 'runc';
  const name = 'docker default runtime';
  if (docker.defaultRuntime === 'runc') return { host: role, name, status: 'pass', observed, expected };
  const remedy =
    'set "default-runtime": "runc" in /etc/docker/daemon.json and restart dockerd: the migration calls runc checkpoint directly, so other runtimes (crun, kata, gVisor) cannot be checkpointed';
  if (docker.defaultRuntime === undefined)
    return { host: role, name, status: 'warn', observed, expected, remedy, code: 'FACT_UNREADABLE' };
  return { host: role, name, status: 'fail', observed, expected, remedy, code: 'RUNTIME_UNSUPPORTED' };
});

export const dockerStorageDriver = withDaemon(({ docker }, role) => {
  const name = 'docker storage';
  const expected = 'overlay2 graph driver (not the containerd image store)';
  const why = 'the writable layer is moved from its overlay2 upper directory';
  if (docker.containerdImageStore) {
    return {
      host: role,
      name,
      status: 'fail',
      observed: `containerd image store (${docker.storageDriver ?? 'snapshotter'})`,
      expected,
      remedy: `turn the containerd image store off ("features": {"containerd-snapshotter": false} in /etc/docker/daemon.json) and use overlay2: ${why}`,
      code: 'STORAGE_DRIVER_UNSUPPORTED',
    };
  }
  const observed = docker.storageDriver ?? 'unknown';
  if (docker.storageDriver === 'overlay2') return { host: role, name, status: 'pass', observed, expected };
  const remedy = `set "storage-driver": "overlay2" in /etc/docker/daemon.json and restart dockerd: ${why}`;
  if (docker.storageDriver === undefined)
    return { host: role, name, status: 'warn', observed, expected, remedy, code: 'FACT_UNREADABLE' };
  return { host: role, name, status: 'fail', observed, expected, remedy, code: 'STORAGE_DRIVER_UNSUPPORTED' };
});

// --- both hosts --------------------------------------------------------------------------------

const UNREADABLE_KERNELS = 'could not read both kernel releases';

export const kernelsMatch: CompatibilityRule = ({ source, target }, { kernelPolicy }) => {
  const a = source.kernel;
  const b = target.kernel;
  const observed = `source ${a.release ?? 'unknown'}, target ${b.release ?? 'unknown'}`;
  const name = 'kernel versions';
  const expectedByPolicy: Record<KernelPolicy, string> = {
    'same-minor': 'the same major.minor (kernel-policy: same-minor)',
    exact: 'the same release (kernel-policy: exact)',
    any: 'any (kernel-policy: any)',
  };
  const expected = expectedByPolicy[kernelPolicy];
  const check = (status: 'pass' | 'warn' | 'fail', remedy?: string): Check[] => [
    {
      host: 'both',
      name,
      status,
      observed,
      expected,
      ...(remedy ? { remedy } : {}),
      ...(status === 'pass'
        ? {}
        : { code: remedy === UNREADABLE_KERNELS ? 'FACT_UNREADABLE' : 'KERNEL_MISMATCH' }),
    },
  ];
  if (kernelPolicy === 'any') return check('pass');
  const remedy =
    'run both hosts on the same kernel, or set kernel-policy to accept the difference (same-minor, any): CRIU restores only what the target kernel supports';
  if (!a.release || !b.release || !a.version || !b.version) return check('warn', UNREADABLE_KERNELS);
  if (a.release === b.release) return check('pass');
  if (kernelPolicy === 'exact') return check('fail', remedy);
  if (majorMinor(a.version) !== majorMinor(b.version)) return check('fail', remedy);
  return check('warn', 'the kernels differ only below major.minor; usually fine, but they are not identical');
};

export const cgroupVersionsMatch: CompatibilityRule = ({ source, target }) => {
  const check = cgroupVersionCheck(source.docker.cgroupVersion, target.docker.cgroupVersion);
  return check ? [check] : [];
};

/**
 * A checkpoint does not restore across cgroup versions (verified both ways: v1 -> v2 fails on
 * the v1 cgroup mounts or lands in the wrong cgroups, v2 -> v1 fails writing devices.allow).
 * Shared by the gate and by restore mode, which knows the source's version from the manifest.
 */
export function cgroupVersionCheck(
  source: string | undefined,
  target: string | undefined,
  sourceLabel = 'source',
): Check | undefined {
  if (source === undefined || target === undefined) return undefined;
  const observed = `${sourceLabel} cgroup v${source}, target cgroup v${target}`;
  const expected = 'the same cgroup version on both hosts';
  if (source === target) return { host: 'both', name: 'cgroup versions', status: 'pass', observed, expected };
  return {
    host: 'both',
    name: 'cgroup versions',
    status: 'fail',
    observed,
    expected,
    remedy: `choose a target that runs cgroup v${source} like the ${sourceLabel}: CRIU restores the cgroups it recorded, and a checkpoint taken on cgroup v${source} does not restore on cgroup v${target}`,
    code: 'CGROUP_MISMATCH',
  };
}

/**
 * How a restored process gets into its new container's cgroup on each host: reported for
 * both (cgroup version, driver, runc's behaviour), refused only where the restore happens.
 */
export const cgroupRestoreRoute: CompatibilityRule = (pair) =>
  (['source', 'target'] as const).flatMap((role): Check[] => {
    const { docker } = pair[role];
    if (!docker.reachable || docker.cgroupVersion === undefined) return [];
    const facts = restoreFactsOf(docker);
    const plan = planRestoreConfig(facts);
    const problem = restoreRouteProblem(facts, plan);
    const observed = `cgroup v${docker.cgroupVersion}, ${docker.cgroupDriver ?? 'unknown'} driver, runc ${show(docker.runcVersion)}`;
    const expected = 'a restore that puts the process into its new container';
    if (problem && role === 'target') {
      return [
        {
          host: role,
          name: 'cgroup restore route',
          status: 'fail',
          observed: `${observed}: ${problem.observed}`,
          expected,
          remedy: problem.remedy,
          code: 'CGROUP2_RESTORE_UNSUPPORTED',
        },
      ];
    }
    const said = problem ? `as a target it could not: ${problem.observed}` : plan.reason;
    return [
      {
        host: role,
        name: 'cgroup restore route',
        status: 'pass',
        observed: `${observed}: ${said}`,
        expected,
      },
    ];
  });

export const architecturesMatch: CompatibilityRule = ({ source, target }) => {
  const a = source.kernel.arch;
  const b = target.kernel.arch;
  if (a === undefined || b === undefined) return [];
  const observed = `source ${a}, target ${b}`;
  const expected = 'the same machine architecture';
  if (a === b) return [{ host: 'both', name: 'cpu architecture', status: 'pass', observed, expected }];
  return [
    {
      host: 'both',
      name: 'cpu architecture',
      status: 'fail',
      observed,
      expected,
      remedy: 'migrate only between hosts of the same architecture: a process image holds machine code',
      code: 'CPU_INCOMPATIBLE',
    },
  ];
};

const CPU_REMEDY =
  'migrate between hosts whose CPUs offer the same features (the same model, or in VMs the same CPU model or baseline for both guests): a restored process keeps using the instructions it found at start';

/** Feature names, shortened for a one-line message. */
function listFlags(flags: readonly string[], max = 12): string {
  if (flags.length <= max) return flags.join(', ');
  return `${flags.slice(0, max).join(', ')} and ${flags.length - max} more`;
}

/**
 * `criu cpuinfo check` on the target of the image `criu cpuinfo dump` wrote on
 * the source (CRIU's own test, the one a restore makes), explained with the
 * /proc/cpuinfo flags the source has and the target lacks.
 */
export const cpuCompatible: CompatibilityRule = ({ source, target, cpu }) => {
  const comparison = cpu?.comparison;
  // Without CRIU on both hosts there is nothing to compare; criu installed says so.
  if (!comparison || !source.criu.present || !target.criu.present) return [];
  const name = 'cpu compatibility';
  const expected = "criu cpuinfo check on the target accepts the source's CPU";
  const missing =
    cpu?.source && cpu.target && cpu.source.flags.length > 0 && cpu.target.flags.length > 0
      ? missingFlags(cpu.source.flags, cpu.target.flags)
      : undefined;
  const models = [cpu?.source?.model, cpu?.target?.model];
  const modelText =
    models[0] && models[1]
      ? models[0] === models[1]
        ? `both ${models[0]}`
        : `source ${models[0]}, target ${models[1]}`
      : undefined;
  if (!comparison.dumped) {
    return [
      {
        host: 'source',
        name,
        status: 'warn',
        observed: `criu cpuinfo dump failed: ${comparison.dumpError ?? 'no image'}`,
        expected,
        remedy: 'run `criu cpuinfo dump -D /tmp/x` as root on the source to see why',
        code: 'FACT_UNREADABLE',
      },
    ];
  }
  if (comparison.checkExitCode === undefined) return [];
  // CRIU that fails without naming the CPU (a broken or stub criu) says nothing about the CPUs;
  // the criu check rule reports that CRIU.
  if (
    comparison.checkExitCode !== 0 &&
    !comparison.checkErrors.some((line) => /\bcpu\b|fpu|xsave/i.test(line))
  ) {
    return [
      {
        host: 'target',
        name,
        status: 'warn',
        observed: `criu cpuinfo check failed without a CPU verdict: ${comparison.checkErrors.join('; ') || comparison.checkMessage || `exit code ${comparison.checkExitCode}`}`,
        expected,
        remedy: 'make `criu check` pass on the target first, then run the gate again',
        code: 'FACT_UNREADABLE',
      },
    ];
  }
  if (comparison.checkExitCode !== 0) {
    const why = comparison.checkErrors.join('; ') || `exit code ${comparison.checkExitCode}`;
    const lacks =
      missing === undefined
        ? ''
        : missing.length > 0
          ? `; the target lacks ${listFlags(missing)}`
          : '; /proc/cpuinfo shows no flag the target lacks, so the difference is in what CRIU compares beyond the flags (xsave layout, vendor)';
    return [
      {
        host: 'both',
        name,
        status: 'fail',
        observed: `criu cpuinfo check failed: ${why}${lacks}${modelText ? ` (${modelText})` : ''}`,
        expected,
        remedy: CPU_REMEDY,
        code: 'CPU_INCOMPATIBLE',
      },
    ];
  }
  if (missing && missing.length > 0) {
    return [
      {
        host: 'both',
        name,
        status: 'warn',
        observed: `criu cpuinfo check passed, but the target lacks ${listFlags(missing)}${modelText ? ` (${modelText})` : ''}`,
        expected: `${expected}, and every CPU flag of the source on the target`,
        remedy: `${CPU_REMEDY}; CRIU checks only part of the flags, so a program that uses one of these may crash after the move`,
        code: 'CPU_FEATURES_DIFFER',
      },
    ];
  }
  const same = missing ? '; no CPU flag of the source is missing on the target' : '';
  return [
    {
      host: 'both',
      name,
      status: 'pass',
      observed: `criu cpuinfo check passed${same}${modelText ? ` (${modelText})` : ''}`,
      expected,
    },
  ];
};

/** Every host rule, in report order. Adding a rule is adding it here. */
export const COMPATIBILITY_RULES: readonly CompatibilityRule[] = [
  criuInstalled,
  criuKnowsKernelVdso,
  criuSurvivesBrokenBreakpoints,
  criuCheckPasses,
  criuFeatures,
  criuTargetNotOlder,
  dockerReachable,
  dockerExperimental,
  dockerCanRestore,
  dockerDefaultRuntime,
  dockerStorageDriver,
  kernelsMatch,
  cgroupVersionsMatch,
  cgroupRestoreRoute,
  architecturesMatch,
  cpuCompatible,
];

export function evaluateCompatibility(
  facts: FactsPair,
  options: CompatibilityOptions = { kernelPolicy: 'same-minor' },
  rules: readonly CompatibilityRule[] = COMPATIBILITY_RULES,
): Check[] {
  return rules.flatMap((rule) => rule(facts, options));
}

export function failures(checks: readonly Check[]): Check[] {
  return checks.filter((check) => check.status === 'fail');
}

export function warnings(checks: readonly Check[]): Check[] {
  return checks.filter((check) => check.status === 'warn');
}

/** The checks that stop the gate: failures, and with strict also warnings. */
export function blocking(checks: readonly Check[], strict: boolean): Check[] {
  return checks.filter((check) => check.status === 'fail' || (strict && check.status === 'warn'));
}
