import type { ErrorCode } from '../errors.js';
import type { HostFacts } from '../facts.js';
import type { KernelPolicy } from '../settings.js';
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
  if (!criu.present || !criu.version || !kernel.version) return undefined;
  // Too old for the vDSO as well: that rule already failed with the same remedy.
  if (atLeast(kernel.version, VDSO_SPLIT_KERNEL) && !atLeast(criu.version, CRIU_FOR_NEW_VDSO))
    return undefined;
  const name = 'criu hardware breakpoints';
  const expected = `criu >= ${CRIU_FOR_BROKEN_BREAKPOINTS} on kernels >= ${VDSO_SPLIT_KERNEL}`;
  const observed = `kernel ${kernel.release ?? 'unknown'}, criu ${show(criu.version)}`;
  // We cannot tell from outside whether hardware breakpoints work (they do not in many VMs),
  // so on the kernels where 4.2 is available at all we ask for it.
  if (!atLeast(kernel.version, VDSO_SPLIT_KERNEL) || atLeast(criu.version, CRIU_FOR_BROKEN_BREAKPOINTS)) {
    return { host: role, name, status: 'pass', observed, expected };
  }
  return {
    host: role,
    name,
    status: 'fail',
    observed,
    expected,
    remedy: `${INSTALL_CRIU}: in virtual machines where hardware breakpoints do not work, CRIU before ${CRIU_FOR_BROKEN_BREAKPOINTS} hangs inside the parasite during the dump (${CRIU_FOR_BROKEN_BREAKPOINTS} detects this)`,
    code: 'CRIU_TOO_OLD',
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
  'Docker 26.1 with containerd 1.7 and runc 1.1 (verified), 27.x likely; not 28.x or 29.x';

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
    };
  }
  if (version.major === 28 || version.major === 29) {
    const why =
      'Docker 28.x and 29.x cannot restore checkpoints of containers with their own network namespace (moby#50750, containerd#12141)';
    return {
      host: role,
      name,
      // Only the target restores; on the source it matters for migrating back.
      status: role === 'target' ? 'fail' : 'warn',
      observed,
      expected: WORKING_DOCKER,
      remedy:
        role === 'target'
          ? `install Docker 26.1 (docker.io, containerd 1.7 and runc 1.1 from Debian trixie) on the target: ${why}`
          : `${why}; this host could not be the target of a migration back`,
      code: 'DOCKER_RESTORE_BROKEN',
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
    return { host: role, name, status: 'warn', observed, expected, remedy };
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
    return { host: role, name, status: 'warn', observed, expected, remedy };
  return { host: role, name, status: 'fail', observed, expected, remedy, code: 'STORAGE_DRIVER_UNSUPPORTED' };
});

// --- both hosts --------------------------------------------------------------------------------

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
      ...(status === 'fail' ? { code: 'KERNEL_MISMATCH' as const } : {}),
    },
  ];
  if (kernelPolicy === 'any') return check('pass');
  const remedy =
    'run both hosts on the same kernel, or set kernel-policy to accept the difference (same-minor, any): CRIU restores only what the target kernel supports';
  if (!a.release || !b.release || !a.version || !b.version)
    return check('warn', 'could not read both kernel releases');
  if (a.release === b.release) return check('pass');
  if (kernelPolicy === 'exact') return check('fail', remedy);
  if (majorMinor(a.version) !== majorMinor(b.version)) return check('fail', remedy);
  return check('warn', 'the kernels differ only below major.minor; usually fine, but they are not identical');
};

export const cgroupVersionsMatch: CompatibilityRule = ({ source, target }) => {
  const a = source.docker.cgroupVersion;
  const b = target.docker.cgroupVersion;
  if (a === undefined || b === undefined) return [];
  const observed = `source cgroup v${a}, target cgroup v${b}`;
  const expected = 'the same cgroup version on both hosts';
  if (a === b) return [{ host: 'both', name: 'cgroup versions', status: 'pass', observed, expected }];
  return [
    {
      host: 'both',
      name: 'cgroup versions',
      status: 'warn',
      observed,
      expected,
      remedy:
        "run both hosts with the same cgroup version: CRIU records the container's cgroups and may fail to restore them into the other hierarchy",
    },
  ];
};

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

/** Every host rule, in report order. Adding a rule is adding it here. */
export const COMPATIBILITY_RULES: readonly CompatibilityRule[] = [
  criuInstalled,
  criuKnowsKernelVdso,
  criuSurvivesBrokenBreakpoints,
  criuCheckPasses,
  criuTargetNotOlder,
  dockerReachable,
  dockerExperimental,
  dockerCanRestore,
  dockerDefaultRuntime,
  dockerStorageDriver,
  kernelsMatch,
  cgroupVersionsMatch,
  architecturesMatch,
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
