import { unsupportedSettings } from '../engine/docker/create-args.js';
import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { ProcessRow } from '../engine/engine.js';
import { formatAddress, isWildcardIp, type PathKind, TCP_LISTEN } from '../probe/parsers.js';
import type { DiskAt, SourceProbe, TargetProbe } from '../probe/preflight-facts.js';
import { formatBytes } from '../report/summary.js';
import type { MemoryMode } from '../settings.js';
import type { Check, CheckHost } from './compatibility.js';
import {
  type ConnectionVerdict,
  connectionRefusal,
  EXEC_REMEDY,
  execProcesses,
  HOST_NETWORK_REMEDY,
  judgeProbe,
  movesEstablished,
  showEntries,
  showHeld,
} from './connections.js';
import { isNamedVolume, movedVolumeNames } from './volumes.js';

export interface ContainerFactsForRules {
  /** What the user asked for (name or ID). */
  ref: string;
  /** The source's inspect, or undefined when it has no such container. */
  container: ContainerInspect | undefined;
  /** The target already has a container by that name; undefined when it could not be asked. */
  targetNameTaken: boolean | undefined;
  /** Why the source's container could not be inspected at all (daemon down, ...). */
  inspectError?: string;
}

/** Pure rules about the container itself; the host rules live in compatibility.ts. */
export function evaluateContainer(facts: ContainerFactsForRules): Check[] {
  const { container, ref } = facts;
  if (!container && facts.inspectError !== undefined) {
    return [
      {
        host: 'source',
        name: 'container exists',
        status: 'fail',
        observed: `could not inspect "${ref}": ${facts.inspectError}`,
        expected: 'a running container',
        remedy: 'make the source Docker daemon answer (see the docker check), then run again',
        code: 'COMMAND_FAILED',
      },
    ];
  }
  if (!container) {
    return [
      {
        host: 'source',
        name: 'container exists',
        status: 'fail',
        observed: `no container "${ref}"`,
        expected: 'a running container',
        remedy: 'check the container input: `docker ps` on the source lists the names',
        code: 'CONTAINER_NOT_FOUND',
      },
    ];
  }
  const name = container.Name.replace(/^\//, '');
  const state = container.State.Paused ? 'paused' : (container.State.Status ?? 'unknown');
  const checks: Check[] = [
    {
      host: 'source',
      name: 'container running',
      status:
        container.State.Running && !container.State.Paused && !container.State.Restarting ? 'pass' : 'fail',
      observed: state,
      expected: 'running (not paused, not restarting)',
      remedy: `start or unpause ${name} on the source first; a paused container may be another migration in progress`,
      code: 'CONTAINER_NOT_RUNNING',
    },
    facts.targetNameTaken === undefined
      ? {
          host: 'target',
          name: 'container name free',
          status: 'warn',
          observed: 'could not ask the target (docker container inspect failed)',
          expected: 'no container of that name on the target',
          remedy: 'see the docker check of the target',
          code: 'FACT_UNREADABLE',
        }
      : {
          host: 'target',
          name: 'container name free',
          status: facts.targetNameTaken ? 'fail' : 'pass',
          observed: facts.targetNameTaken ? `"${name}" exists` : `"${name}" is free`,
          expected: 'no container of that name on the target',
          remedy: `remove or rename the target's container "${name}" (docker rm / docker rename)`,
          code: 'TARGET_NAME_TAKEN',
        },
  ];
  const runtime = container.HostConfig.Runtime || 'runc';
  checks.push({
    host: 'source',
    name: 'container runtime',
    status: runtime === 'runc' ? 'pass' : 'fail',
    observed: runtime,
    expected: 'runc',
    remedy: 'recreate the container with --runtime runc: the checkpoint is taken with runc',
    code: 'RUNTIME_UNSUPPORTED',
  });
  const driver = container.GraphDriver?.Name ?? 'unknown';
  checks.push({
    host: 'source',
    name: 'container storage',
    status: driver === 'overlay2' && container.GraphDriver?.Data?.UpperDir ? 'pass' : 'fail',
    observed: driver,
    expected: 'overlay2 with an upper directory',
    remedy: 'use the overlay2 storage driver: the writable layer is moved from its upper directory',
    code: 'STORAGE_DRIVER_UNSUPPORTED',
  });
  const devices =
    (container.HostConfig.Devices?.length ?? 0) + (container.HostConfig.DeviceRequests?.length ?? 0);
  checks.push({
    host: 'source',
    name: 'devices attached',
    status: devices === 0 ? 'pass' : 'fail',
    observed: devices === 0 ? 'none' : `${devices} device(s) or GPU request(s)`,
    expected: 'none',
    remedy: 'CRIU cannot move device or GPU state; stop using the device or migrate the job another way',
    code: 'CONTAINER_HAS_DEVICES',
  });
  return checks;
}

// --- preflight: placement on the target, connections and capacity ----------------------------

/** What the placement and capacity rules read: the container and both hosts' probes. */
export interface PlacementFacts {
  container: ContainerInspect;
  /** The network holder the container joins (an earlier migration's), when the route takes it along. */
  sourceHolder?: ContainerInspect;
  source: SourceProbe;
  target: TargetProbe;
  /** How the pages move (absent: eager): with overlap the source's disk holds no process pages. */
  memory?: MemoryMode;
}

export type PlacementRule = (facts: PlacementFacts) => Check[];

const UNREADABLE = 'FACT_UNREADABLE' as const;

function unreadable(host: CheckHost, name: string, expected: string, what: string): Check {
  return {
    host,
    name,
    status: 'warn',
    observed: `could not be read (${what})`,
    expected,
    remedy: 'see the preflight log for the command that failed on this host',
    code: UNREADABLE,
  };
}

function sharedNamespace(mode: string | undefined): string | undefined {
  return mode?.startsWith('container:') ? mode.slice('container:'.length) : undefined;
}

const DEFAULT_NETWORKS = new Set(['', 'default', 'bridge']);

export const networkMode: PlacementRule = ({ container, sourceHolder }) => {
  const mode = container.HostConfig.NetworkMode || 'default';
  const name = 'network mode';
  const expected = 'bridge, none or a user-defined network (its own network namespace)';
  const other = sharedNamespace(mode);
  if (other !== undefined && sourceHolder) {
    const holder = sourceHolder.Name.replace(/^\//, '');
    const owned = sourceHolder.HostConfig.NetworkMode || 'default';
    return [
      {
        host: 'source',
        name,
        status: 'pass',
        observed: `${owned}, held by network holder ${holder}`,
        expected,
      },
    ];
  }
  if (other !== undefined) {
    return [
      {
        host: 'source',
        name,
        status: 'fail',
        observed: `${mode} (uses the network namespace of container ${other})`,
        expected,
        remedy: `recreate the container with its own network (for example a user-defined network that ${other} also joins): a namespace that belongs to another container does not move with this one`,
        code: 'CONTAINER_SHARES_NAMESPACE',
      },
    ];
  }
  if (mode === 'host') {
    return [
      {
        host: 'source',
        name,
        status: 'warn',
        observed: "host (the host's network namespace)",
        expected,
        remedy:
          "after the move it sees the target's interfaces and addresses: sockets bound to addresses only the source has cannot be restored, and its ports must be free on the target; prefer a bridge or user-defined network",
        code: 'NETWORK_MODE_HOST',
      },
    ];
  }
  return [{ host: 'source', name, status: 'pass', observed: mode, expected }];
};

export const sharedNamespaces: PlacementRule = ({ container }) => {
  const host = container.HostConfig;
  const shared = [
    ['ipc', host.IpcMode],
    ['pid', host.PidMode],
  ].filter(([, mode]) => mode === 'host' || sharedNamespace(mode) !== undefined);
  const name = 'ipc and pid namespaces';
  const expected = 'its own (not host, not container:<name>)';
  if (shared.length === 0) return [{ host: 'source', name, status: 'pass', observed: 'its own', expected }];
  return [
    {
      host: 'source',
      name,
      status: 'fail',
      observed: shared.map(([kind, mode]) => `${kind} ${mode}`).join(', '),
      expected,
      remedy:
        "recreate the container without --ipc/--pid host or container:<name>: CRIU can only move namespaces the container owns, not the host's or another container's",
      code: 'CONTAINER_SHARES_NAMESPACE',
    },
  ];
};

export const networkOnTarget: PlacementRule = ({ container, target, sourceHolder }) => {
  const mode = (sourceHolder ?? container).HostConfig.NetworkMode || 'default';
  if (DEFAULT_NETWORKS.has(mode) || mode === 'host' || mode === 'none' || sharedNamespace(mode) !== undefined)
    return [];
  const name = 'network on target';
  const expected = `network "${mode}" exists on the target`;
  if (!target.networks)
    return [unreadable('target', name, expected, target.unreadable.networks ?? 'docker network ls')];
  if (target.networks.includes(mode))
    return [{ host: 'target', name, status: 'pass', observed: `"${mode}" exists`, expected }];
  return [
    {
      host: 'target',
      name,
      status: 'fail',
      observed: `no network "${mode}" (the target has ${target.networks.join(', ') || 'none'})`,
      expected,
      remedy: `create it on the target first with the same driver and options as on the source (docker network inspect ${mode} there; docker network create ... ${mode})`,
      code: 'NETWORK_MISSING',
    },
  ];
};

interface WantedPort {
  label: string;
  hostIp: string;
  first: number;
  last: number;
  proto: string;
}

function wantedPorts(container: ContainerInspect): WantedPort[] {
  const wanted: WantedPort[] = [];
  for (const [port, bindings] of Object.entries(container.HostConfig.PortBindings ?? {})) {
    const proto = port.split('/')[1] ?? 'tcp';
    for (const binding of bindings) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(binding.HostPort ?? '');
      // No host port (or 0): Docker picks a free one on the target.
      if (!match || Number(match[1]) === 0) continue;
      const first = Number(match[1]);
      const hostIp = binding.HostIp ?? '';
      const where = hostIp === '' ? '' : hostIp.includes(':') ? `[${hostIp}]:` : `${hostIp}:`;
      wanted.push({
        label: `${where}${binding.HostPort}/${proto}`,
        hostIp,
        first,
        last: match[2] ? Number(match[2]) : first,
        proto,
      });
    }
  }
  return wanted;
}

function ipsOverlap(a: string, b: string): boolean {
  return isWildcardIp(a) || isWildcardIp(b) || a === b;
}

export const publishedPorts: PlacementRule = ({ container, target }) => {
  const wanted = wantedPorts(container);
  const name = 'published ports';
  const expected = 'every published host port free on the target';
  if (wanted.length === 0)
    return [{ host: 'target', name, status: 'pass', observed: 'no published host ports', expected }];
  if (!target.listeners && !target.published) {
    return [
      unreadable(
        'target',
        name,
        expected,
        target.unreadable.listen_tcp ?? target.unreadable.published ?? 'listening sockets',
      ),
    ];
  }
  const conflicts: string[] = [];
  for (const want of wanted) {
    const inRange = (port: number) => port >= want.first && port <= want.last;
    const table = want.proto === 'udp' ? target.listeners?.udp : target.listeners?.tcp;
    const sockets = (table ?? []).filter(
      (entry) =>
        (want.proto === 'udp' || entry.state === TCP_LISTEN) &&
        inRange(entry.local.port) &&
        ipsOverlap(want.hostIp, entry.local.ip),
    );
    const users = (target.published ?? []).filter(
      (p) =>
        p.proto === want.proto &&
        p.firstPort <= want.last &&
        p.lastPort >= want.first &&
        ipsOverlap(want.hostIp, p.hostIp),
    );
    const by = [
      ...new Set([
        ...users.map((p) => `container ${p.container}`),
        ...sockets.map((entry) => `a socket on ${formatAddress(entry.local)}`),
      ]),
    ];
    if (by.length > 0) conflicts.push(`${want.label} (taken by ${by.join(', ')})`);
  }
  const list = wanted.map((want) => want.label).join(', ');
  if (conflicts.length === 0) {
    const partial = !target.listeners ? ' (listening sockets unreadable; checked other containers only)' : '';
    return [{ host: 'target', name, status: 'pass', observed: `${list} free${partial}`, expected }];
  }
  return [
    {
      host: 'target',
      name,
      status: 'fail',
      observed: `in use on the target: ${conflicts.join('; ')}`,
      expected,
      remedy:
        'stop what listens on those ports on the target (docker ps there; ss -ltnup), or publish the container on other ports',
      code: 'PORT_IN_USE',
    },
  ];
};

const KIND_TEXT: Record<PathKind, string> = { directory: 'a directory', file: 'a file', missing: 'missing' };

export const bindMounts: PlacementRule = ({ container, source, target }) =>
  container.Mounts.filter((mount) => mount.Type === 'bind' && mount.Source !== '').map((mount) => {
    const name = `bind mount ${mount.Destination}`;
    const sourceKind = source.bindKinds[mount.Source];
    const targetKind = target.bindKinds[mount.Source];
    const expected = `${mount.Source} exists on the target${sourceKind && sourceKind !== 'missing' ? ` as ${KIND_TEXT[sourceKind]}` : ''}`;
    if (!targetKind) return unreadable('target', name, expected, target.unreadable.binds ?? 'test -e');
    const remedy = `create ${mount.Source} on the target with the content the container expects (for example rsync -a from the source, or the same shared file system mounted there): a bind mount's content does not move with the container`;
    if (targetKind === 'missing') {
      return {
        host: 'target',
        name,
        status: 'fail',
        observed: `${mount.Source} does not exist on the target`,
        expected,
        remedy,
        code: 'MOUNT_SOURCE_MISSING',
      } satisfies Check;
    }
    if (sourceKind && sourceKind !== 'missing' && sourceKind !== targetKind) {
      return {
        host: 'target',
        name,
        status: 'fail',
        observed: `${mount.Source} is ${KIND_TEXT[targetKind]} on the target but ${KIND_TEXT[sourceKind]} on the source`,
        expected,
        remedy,
        code: 'MOUNT_SOURCE_MISSING',
      } satisfies Check;
    }
    return {
      host: 'target',
      name,
      status: 'pass',
      observed: `${mount.Source} is ${KIND_TEXT[targetKind]} on the target`,
      expected,
    } satisfies Check;
  });

/** Volumes that do not move (other drivers, anonymous ones); the moved ones are checked in volumes.ts. */
export const volumes: PlacementRule = ({ container, target }) =>
  container.Mounts.filter(
    (mount) => mount.Type === 'volume' && mount.Name && !movedVolumeNames(container).includes(mount.Name),
  ).map((mount) => {
    const volume = mount.Name ?? '';
    const named = isNamedVolume(container, volume);
    const name = named ? `volume ${volume}` : `anonymous volume ${mount.Destination}`;
    const expected = named
      ? `volume "${volume}" exists on the target`
      : 'informational: Docker creates it empty on the target';
    if (!target.volumes)
      return unreadable('target', name, expected, target.unreadable.volumes ?? 'docker volume ls');
    const present = target.volumes.includes(volume);
    if (present) {
      return {
        host: 'target',
        name,
        status: 'pass',
        observed: `"${volume}" exists on the target (the migration does not copy volume content)`,
        expected,
      } satisfies Check;
    }
    if (!named) {
      return {
        host: 'target',
        name,
        status: 'warn',
        observed: `created empty on the target; its content (${mount.Destination}) stays on the source`,
        expected,
        remedy:
          'if the container keeps data there, use a named volume and copy it to the target before migrating',
        code: 'VOLUME_MISSING',
      } satisfies Check;
    }
    return {
      host: 'target',
      name,
      status: 'fail',
      observed: `no volume "${volume}" on the target`,
      expected,
      remedy: `create it on the target and copy its data first (docker volume create ${mount.Driver && mount.Driver !== 'local' ? `--driver ${mount.Driver} ` : ''}${volume}, then copy the content, for example with a helper container and tar over ssh): volume content does not move with the container`,
      code: 'VOLUME_MISSING',
    } satisfies Check;
  });

export const tcpConnections: PlacementRule = ({ container, source }) => {
  if (!container.State.Running) return [];
  const name = 'tcp connections';
  const expected =
    "no established TCP connection to peers outside the container; inside it, both ends held by the container's own processes";
  if (!source.tcp)
    return [unreadable('source', name, expected, source.unreadable.tcp ?? '/proc/<pid>/net/tcp')];
  const verdict = judgeProbe(source, container.State.Pid);
  if (!verdict) return [];
  const { inside, outside } = verdict;
  const insideText =
    inside.length > 0 ? `${inside.length} over loopback inside the container: ${showEntries(inside)}` : '';
  const checks: Check[] = [];
  const refusal = connectionRefusal(verdict);
  if (!refusal && inside.length > 0 && container.HostConfig.NetworkMode === 'host') {
    // The host's own loopback: its ports are not the container's to take along.
    checks.push({
      host: 'source',
      name,
      status: 'fail',
      observed: `${insideText}, in the host's network namespace (network mode host)`,
      expected,
      remedy: HOST_NETWORK_REMEDY,
      code: 'TCP_CONNECTIONS_OPEN',
    });
  } else if (refusal && refusal.code === 'TCP_CONNECTIONS_OPEN') {
    // Refused here rather than after a freeze that must roll back: CRIU would fail the dump on
    // an outside peer, and a loopback end it does not dump would break the other end.
    checks.push({
      host: 'source',
      name,
      status: 'fail',
      observed: outside.length > 0 && insideText ? `${refusal.observed}; ${insideText}` : refusal.observed,
      expected,
      remedy: refusal.remedy,
      code: 'TCP_CONNECTIONS_OPEN',
    });
  } else if (refusal) {
    // The exec'd process is named by the check below.
    checks.push({
      host: 'source',
      name,
      status: 'fail',
      observed: `none to outside peers; ${insideText}, an end of which a docker exec process holds`,
      expected,
      remedy: refusal.remedy,
      code: 'EXEC_SESSION_CONNECTED',
    });
  } else if (inside.length === 0) {
    checks.push({ host: 'source', name, status: 'pass', observed: 'none', expected });
  } else if (movesEstablished(verdict)) {
    checks.push({
      host: 'source',
      name,
      status: 'pass',
      observed: `none to outside peers; ${insideText}, moved established (CRIU tcp-established)`,
      expected,
    });
  }
  return [...checks, ...execChecks(container, source, verdict)];
};

/** `docker exec` sessions: they do not move, and one holding a connection to the container's own processes stops the dump. */
function execChecks(container: ContainerInspect, source: SourceProbe, verdict: ConnectionVerdict): Check[] {
  if (!source.processes) return [];
  const exec = execProcesses(container.State.Pid, source.processes);
  const name = 'docker exec processes';
  const expected = "every process a descendant of the container's first process";
  if (exec.length === 0) return [{ host: 'source', name, status: 'pass', observed: 'none', expected }];
  if (verdict.heldByExec.length > 0) {
    return [
      {
        host: 'source',
        name,
        status: 'fail',
        observed: `${showHeld(verdict.heldByExec)}: a connection to the container's own processes from a process CRIU does not dump`,
        expected,
        remedy: EXEC_REMEDY,
        code: 'EXEC_SESSION_CONNECTED',
      },
    ];
  }
  const describe = (row: ProcessRow): string => `pid ${row.pid} "${row.args}"`;
  return [
    {
      host: 'source',
      name,
      status: 'warn',
      observed: `${exec.length} started by docker exec, which will not move (they end with the source): ${exec.slice(0, 5).map(describe).join(', ')}`,
      expected,
      remedy:
        'end those docker exec sessions first if they matter, or start them again on the target afterwards',
      code: 'EXEC_PROCESSES_LEFT',
    },
  ];
}

// Settings with a check of their own above.
const COVERED_SETTINGS = [
  'HostConfig.Devices',
  'HostConfig.DeviceRequests',
  'HostConfig.NetworkMode',
  'HostConfig.IpcMode',
  'HostConfig.PidMode',
];

export const settingsCarried: PlacementRule = ({ container, source }) => {
  const found = unsupportedSettings(container, source.imageConfig).filter(
    (line) => !COVERED_SETTINGS.some((prefix) => line.startsWith(`${prefix}:`)),
  );
  const name = 'container settings';
  const expected = 'every setting can be recreated on the target by docker create';
  if (found.length === 0)
    return [{ host: 'source', name, status: 'pass', observed: 'all can be recreated', expected }];
  return [
    {
      host: 'source',
      name,
      status: 'warn',
      observed: found.join('; '),
      expected,
      remedy:
        'these settings are not recreated exactly on the target: change them on the source first, or check the target container after the move',
      code: 'SETTINGS_NOT_CARRIED',
    },
  ];
};

// --- capacity --------------------------------------------------------------------------------

/** Room asked for beyond the estimate: images carry some overhead, and the disk must not fill up. */
export const CAPACITY_MARGIN = 1.25;
export const CAPACITY_SLACK_BYTES = 64 * 1024 * 1024;

export function withMargin(bytes: number): number {
  return Math.ceil(bytes * CAPACITY_MARGIN) + CAPACITY_SLACK_BYTES;
}

interface Need {
  bytes: number;
  parts: string[];
}

function need(parts: [string, number | undefined][]): Need {
  const known = parts.filter((part): part is [string, number] => part[1] !== undefined && part[1] > 0);
  const bytes = known.reduce((sum, [, n]) => sum + n, 0);
  return { bytes, parts: known.map(([label, n]) => `${label} ${formatBytes(n)}`) };
}

function spaceCheck(
  host: CheckHost,
  name: string,
  at: DiskAt,
  wanted: Need,
  why: string,
  remedy: string,
): Check {
  const required = withMargin(wanted.bytes);
  const basis = wanted.parts.length > 0 ? wanted.parts.join(' + ') : 'nothing measured';
  const expected = `at least ${formatBytes(required)} free (${basis}, × ${CAPACITY_MARGIN} + ${formatBytes(CAPACITY_SLACK_BYTES)}) for ${why}`;
  const where = at.measured === at.path ? at.path : `${at.path} (measured at ${at.measured})`;
  if (!at.disk) {
    return {
      host,
      name,
      status: 'warn',
      observed: `free space at ${where} could not be read`,
      expected,
      remedy: 'see the preflight log for the df that failed',
      code: UNREADABLE,
    };
  }
  const observed = `${formatBytes(at.disk.availableBytes)} free on ${at.disk.mountedOn} (${at.disk.filesystem}) for ${where}`;
  if (at.disk.availableBytes >= required) return { host, name, status: 'pass', observed, expected };
  return { host, name, status: 'fail', observed, expected, remedy, code: 'DISK_SPACE_LOW' };
}

function sameFileSystem(a: DiskAt, b: DiskAt): boolean {
  return (
    a.disk !== undefined &&
    b.disk !== undefined &&
    a.disk.mountedOn === b.disk.mountedOn &&
    a.disk.filesystem === b.disk.filesystem
  );
}

/** The container's memory as far as a checkpoint holds it; 0 when it is not running. */
function memoryNeed(container: ContainerInspect, source: SourceProbe): [string, number | undefined] {
  if (!container.State.Running) return ['memory (not running)', 0];
  return ['memory', source.memory?.bytes];
}

/**
 * What the source's disk must hold of the memory. With overlap the process pages go to the
 * target's page server, but a tmpfs's files (/dev/shm) are still written there, so shared memory
 * (memory.stat shmem, tmpfs included) is asked for; unknown, all of it. Lazy writes what it
 * cannot serve lazily there too, so it is asked for all of it, like eager.
 */
function sourcePagesNeed(
  mode: MemoryMode,
  memory: [string, number | undefined],
  shmemBytes: number | undefined,
): Need {
  if (mode !== 'overlap' || shmemBytes === undefined || memory[1] === 0) return need([memory]);
  const shared = need([['shared memory and tmpfs', shmemBytes]]);
  return {
    bytes: shared.bytes,
    parts: ['no process pages (memory: overlap sends them while it dumps)', ...shared.parts],
  };
}

export const capacity: PlacementRule = ({ container, source, target, memory: mode = 'eager' }) => {
  const checks: Check[] = [];
  const memory = memoryNeed(container, source);
  if (container.State.Running && !source.memory) {
    checks.push(
      unreadable(
        'source',
        'container memory',
        "the container's memory use (cgroup memory.stat or docker stats)",
        source.unreadable.memory ?? 'cgroup',
      ),
    );
  }
  const layer: [string, number | undefined] = ['writable layer', source.writableLayerBytes];
  const image: [string, number | undefined] =
    target.imagePresent === false ? ['image (not on the target yet)', source.imageBytes] : ['image', 0];

  checks.push(
    spaceCheck(
      'source',
      'disk space for checkpoint',
      source.stateDir,
      sourcePagesNeed(mode, memory, source.memory?.shmemBytes),
      'the checkpoint images on the source',
      `free space on the file system holding ${source.stateDir.path} on the source, or mount a larger one there: the checkpoint images (about the container's memory) are written there while it is frozen`,
    ),
  );
  // The pages are staged in the action's work directory and Docker's checkpoint
  // directory only links to them, so containerd's restore copy is a few KiB.
  const stagedWithDocker = sameFileSystem(target.dockerRoot, target.stateDir);
  checks.push(
    spaceCheck(
      'target',
      'disk space on docker root',
      target.dockerRoot,
      need(stagedWithDocker ? [memory, layer, image] : [layer, image]),
      stagedWithDocker
        ? `the checkpoint staged in ${target.stateDir.path}, the writable layer and the image (one file system)`
        : 'the writable layer and the image',
      `free space in ${target.dockerRoot.path} on the target (docker system prune removes unused images and containers), or move Docker's data-root to a larger disk`,
    ),
  );
  if (!stagedWithDocker) {
    checks.push(
      spaceCheck(
        'target',
        'disk space for staged checkpoint',
        target.stateDir,
        need([memory]),
        `the checkpoint images staged in ${target.stateDir.path} (Docker's checkpoint directory links to them)`,
        `free space on the file system holding ${target.stateDir.path} on the target, or mount a larger one there`,
      ),
    );
  }
  const mem = memory[1];
  if (mem !== undefined && mem > 0) {
    const expected = `MemAvailable at least ${formatBytes(Math.ceil(mem * 1.1))} (the container's memory + 10 %)`;
    if (target.memAvailableBytes === undefined) {
      checks.push(
        unreadable('target', 'memory on target', expected, target.unreadable.meminfo ?? '/proc/meminfo'),
      );
    } else {
      const observed = `${formatBytes(target.memAvailableBytes)} available; the container uses ${formatBytes(mem)}`;
      checks.push(
        target.memAvailableBytes >= mem * 1.1
          ? { host: 'target', name: 'memory on target', status: 'pass', observed, expected }
          : {
              host: 'target',
              name: 'memory on target',
              status: 'warn',
              observed,
              expected,
              remedy:
                'free memory on the target first: the restored container may be killed by the OOM killer or push other workloads out',
              code: 'MEMORY_LOW',
            },
      );
    }
  }
  return checks;
};

/** Rules that need the preflight probes, in report order. */
export const PLACEMENT_RULES: readonly PlacementRule[] = [
  networkMode,
  sharedNamespaces,
  networkOnTarget,
  publishedPorts,
  bindMounts,
  volumes,
  tcpConnections,
  settingsCarried,
  capacity,
];

export function evaluatePlacement(
  facts: PlacementFacts,
  rules: readonly PlacementRule[] = PLACEMENT_RULES,
): Check[] {
  return rules.flatMap((rule) => rule(facts));
}
