import type { DockerFacts } from '../probe/facts.js';
import { atLeast, type Version } from './versions.js';

/**
 * The CRIU configuration a restored container gets through its
 * `org.criu.config` annotation (runc hands that file to CRIU on restore and on
 * every later checkpoint). One file per restore, written by phases/criu-config.ts;
 * what goes into it is decided here.
 */

/** runc 1.2 tells CRIU the new container's cgroup on cgroup v2 itself (runc#3447, runc#3546). */
export const RUNC_SETS_CGROUP2_ROOT = '1.2';
/** Docker API of the first release whose `docker create` takes `--annotation` (Docker 24). */
export const DOCKER_API_WITH_ANNOTATIONS = '1.43';

/** What the target says of its cgroups and runtime (docker info / docker version). */
export interface RestoreHostFacts {
  /** "1" or "2". */
  cgroupVersion?: string;
  /** "cgroupfs" or "systemd". */
  cgroupDriver?: string;
  runcVersion?: Version;
  apiVersion?: string;
}

export function restoreFactsOf(docker: DockerFacts): RestoreHostFacts {
  return {
    ...(docker.cgroupVersion ? { cgroupVersion: docker.cgroupVersion } : {}),
    ...(docker.cgroupDriver ? { cgroupDriver: docker.cgroupDriver } : {}),
    ...(docker.runcVersion ? { runcVersion: docker.runcVersion } : {}),
    ...(docker.apiVersion ? { apiVersion: docker.apiVersion } : {}),
  };
}

export interface RestoreConfigPlan {
  /** Write `cgroup-root :<the new container's cgroup>`: runc does not pass it to CRIU here. */
  cgroupRoot: boolean;
  /** Write `tcp-established`: the dump kept connections inside the container established. */
  tcpEstablished: boolean;
  /** Why, in a sentence for the log and the preflight report. */
  reason: string;
  /**
   * Post-copy (memory: lazy): the restore takes its pages from the lazy-pages daemon, whose
   * socket is in this directory (containerd's own work directory exists only once the start runs).
   */
  lazyWorkDir?: string;
}

/** Whether the restore needs the annotation's file at all. */
export function needsRestoreConfig(plan: RestoreConfigPlan): boolean {
  return plan.cgroupRoot || plan.tcpEstablished || plan.lazyWorkDir !== undefined;
}

/** Whether a restore on this target needs the annotation's file, and for what. */
export function planRestoreConfig(
  target: RestoreHostFacts,
  options: { lazyWorkDir?: string; tcpEstablished?: boolean } = {},
): RestoreConfigPlan {
  const plan = planCgroupRoot(target, options.tcpEstablished === true);
  if (options.lazyWorkDir === undefined) return plan;
  return {
    ...plan,
    lazyWorkDir: options.lazyWorkDir,
    reason: `${plan.reason}; memory: lazy, so the restore takes its pages from the lazy-pages daemon in ${options.lazyWorkDir}`,
  };
}

function planCgroupRoot(target: RestoreHostFacts, tcpEstablished: boolean): RestoreConfigPlan {
  const tcp = tcpEstablished
    ? '; the connections inside the container are restored established (tcp-established)'
    : '';
  if (target.cgroupVersion !== '2')
    return {
      cgroupRoot: false,
      tcpEstablished,
      reason: `cgroup v1: runc restores into the new container itself${tcp}`,
    };
  if (atLeast(target.runcVersion, RUNC_SETS_CGROUP2_ROOT))
    return {
      cgroupRoot: false,
      tcpEstablished,
      reason: `cgroup v2 with runc ${target.runcVersion?.raw}: runc moves the restored process into the new container itself${tcp}`,
    };
  return {
    cgroupRoot: true,
    tcpEstablished,
    reason: `cgroup v2 with runc ${target.runcVersion?.raw ?? '(version unknown)'}: runc before ${RUNC_SETS_CGROUP2_ROOT} leaves the restored process in the old container's cgroup, so the new container's cgroup is given to CRIU through the container's org.criu.config file${tcp}`,
  };
}

/** Why the target cannot take the cgroup restore route (the gate's check gives it its code). */
export interface RestoreRouteProblem {
  observed: string;
  remedy: string;
}

/** The annotation route needs `docker create --annotation` and a driver whose paths we know. */
export function restoreRouteProblem(
  target: RestoreHostFacts,
  plan: RestoreConfigPlan,
): RestoreRouteProblem | undefined {
  if (!plan.cgroupRoot) return undefined;
  const remedy = `use runc ${RUNC_SETS_CGROUP2_ROOT} or newer on the target (Debian sid's runc 1.3 works), or Docker 24 or newer with the cgroupfs or systemd driver (Debian trixie's Docker 26.1 with runc 1.1 works)`;
  if (!target.apiVersion || !atLeast(target.apiVersion, DOCKER_API_WITH_ANNOTATIONS)) {
    return {
      observed: `Docker API ${target.apiVersion ?? 'unknown'} has no container annotations, and runc ${target.runcVersion?.raw ?? 'unknown'} would restore the process outside its container on cgroup v2`,
      remedy,
    };
  }
  if (target.cgroupDriver !== 'cgroupfs' && target.cgroupDriver !== 'systemd') {
    return {
      observed: `cgroup driver ${target.cgroupDriver ?? 'unknown'}: the new container's cgroup path is not known before it starts`,
      remedy,
    };
  }
  return undefined;
}

/**
 * The container's cgroup as the target's cgroup namespace shows it, the way
 * Docker names it: `<parent>/<id>` with cgroupfs (parent /docker), and
 * `<slices>/docker-<id>.scope` with systemd (parent system.slice, where a
 * slice "a-b.slice" lives in /a.slice/a-b.slice).
 */
export function containerCgroupPath(driver: string, containerId: string, cgroupParent?: string): string {
  if (driver === 'systemd') {
    const slice = cgroupParent && cgroupParent !== '' ? cgroupParent : 'system.slice';
    return `${sliceDirs(slice)}/docker-${containerId}.scope`;
  }
  const parent = cgroupParent && cgroupParent !== '' ? cgroupParent : '/docker';
  return `${parent.startsWith('/') ? '' : '/'}${parent.replace(/\/+$/, '')}/${containerId}`;
}

/** "a-b.slice" -> "/a.slice/a-b.slice"; "-.slice" is the root. */
function sliceDirs(slice: string): string {
  const name = slice.replace(/\.slice$/, '');
  if (name === '-' || name === '') return '';
  const parts = name.split('-');
  const dirs: string[] = [];
  for (let i = 1; i <= parts.length; i++) dirs.push(`${parts.slice(0, i).join('-')}.slice`);
  return `/${dirs.join('/')}`;
}

/**
 * The lines of the file for a restore. The empty controller name before the
 * colon limits the rewrite to the cgroup2 hierarchy (CRIU names that one ""):
 * without it every hierarchy, v1 ones too, would be rewritten.
 */
export function restoreConfigLines(plan: RestoreConfigPlan, cgroupPath: string | undefined): string[] {
  const lines: string[] = [];
  if (plan.cgroupRoot && cgroupPath) lines.push(`cgroup-root :${cgroupPath}`);
  if (plan.tcpEstablished) lines.push('tcp-established');
  if (plan.lazyWorkDir !== undefined) lines.push('lazy-pages', `work-dir ${plan.lazyWorkDir}`);
  return lines;
}

/**
 * What stays in the file once the container runs: only what is still true of
 * it for its next checkpoint or restore (its own cgroup); options of one move
 * (a lazy-pages restore, say) must not reach the next dump.
 */
export function lastingConfigLines(lines: readonly string[]): string[] {
  return lines.filter((line) => line.startsWith('cgroup-root '));
}

/** A cgroup path the action writes into a CRIU option: nothing a line break or a space could split. */
export function safeCgroupPath(path: string): boolean {
  return /^(\/[A-Za-z0-9_.@:-]+)+$/.test(path);
}
