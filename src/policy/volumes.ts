import type { ContainerInspect } from '../engine/docker/inspect.js';
import { shellQuote } from '../host/shell.js';
import type { Check } from './compatibility.js';

/** A volume as `docker volume inspect` describes it. */
export interface VolumeInfo {
  name: string;
  driver: string;
  mountpoint: string;
  options: Record<string, string>;
  labels: Record<string, string>;
}

/** What one host said about one volume. */
export interface VolumeProbe {
  name: string;
  /** Undefined when the host has no volume of that name. */
  info?: VolumeInfo;
  /** Containers (running or paused) that mount it: id and name. */
  users: { id: string; name: string }[];
  /** Bytes under its mount point (du -sb), when it could be read. */
  sizeBytes?: number;
  /** Whether its mount point holds anything. */
  hasContent: boolean;
}

export interface VolumeFacts {
  source: VolumeProbe[];
  target: VolumeProbe[];
  /** What could not be read, per host. */
  unreadable: { source?: string; target?: string };
}

export interface VolumeOptions {
  /** volume-replace: a target volume of the same name with other contents may be emptied and refilled. */
  replace: boolean;
  /** volume-use-target-options: a target volume with driver options is used as it is, nothing copied into it. */
  useTargetOptions: boolean;
}

function describeOptions(info: VolumeInfo): string {
  return Object.entries(info.options)
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
}

/** What the run does with one volume on the target. */
export type TargetVolumeAction =
  /** Created with the source's driver options and labels. */
  | { action: 'create' }
  /** Present: its contents are set aside (kept until the run commits) and it is refilled. */
  | { action: 'replace'; mountpoint: string; hadContent: boolean };

export interface VolumePlan {
  name: string;
  source: VolumeInfo;
  sizeBytes?: number;
  target: TargetVolumeAction;
  /**
   * Whether the contents travel: not for a volume with driver options (an NFS
   * export, a bind of a device path), whose data lives where the options point.
   */
  copyContents: boolean;
}

const ANONYMOUS = /^[0-9a-f]{64}$/;

/** Named by the user (in -v/--mount), not the anonymous one Docker made for an image VOLUME. */
export function isNamedVolume(container: ContainerInspect, volume: string): boolean {
  if (!ANONYMOUS.test(volume)) return true;
  const host = container.HostConfig;
  return (
    (host.Binds ?? []).some((bind) => bind.split(':')[0] === volume) ||
    (host.Mounts ?? []).some((mount) => mount.Source === volume)
  );
}

/** The named volumes of the `local` driver the container mounts: the ones that move with it. */
export function movedVolumeNames(container: ContainerInspect): string[] {
  const names = container.Mounts.filter(
    (mount) =>
      mount.Type === 'volume' &&
      mount.Name &&
      (mount.Driver ?? 'local') === 'local' &&
      isNamedVolume(container, mount.Name),
  ).map((mount) => mount.Name ?? '');
  return [...new Set(names)].sort();
}

function hasOptions(info: VolumeInfo): boolean {
  return Object.keys(info.options).length > 0;
}

/**
 * The source side of one moved volume: unreadable, or mounted by another
 * container (two writers cannot be moved consistently). Undefined when fine.
 */
export function sourceVolumeCheck(
  container: ContainerInspect,
  name: string,
  source: VolumeProbe | undefined,
  unreadable: string | undefined,
): Check | undefined {
  const check = `volume ${name}`;
  if (!source?.info) {
    return {
      host: 'source',
      name: check,
      status: 'warn',
      observed: `could not be read (${unreadable ?? 'docker volume inspect'})`,
      expected: 'the volume readable on the source',
      remedy: 'see the preflight log for the command that failed on this host',
      code: 'FACT_UNREADABLE',
    };
  }
  const others = source.users.filter((user) => user.id !== container.Id && !container.Id.startsWith(user.id));
  if (others.length === 0) return undefined;
  const names = others.map((user) => user.name).join(', ');
  return {
    host: 'source',
    name: check,
    status: 'fail',
    observed: `also mounted by ${others.length === 1 ? 'container' : 'containers'} ${names} on the source`,
    expected: `"${name}" used only by ${container.Name.replace(/^\//, '')} (two writers cannot be moved consistently)`,
    remedy: `stop ${names} (or move them off the volume) before migrating, or migrate them together one after another with the volume stopped`,
    code: 'VOLUME_SHARED',
  };
}

/** The gate's checks for the volumes that move; pure. */
export function evaluateVolumes(
  container: ContainerInspect,
  facts: VolumeFacts,
  options: VolumeOptions,
): Check[] {
  const checks: Check[] = [];
  for (const name of movedVolumeNames(container)) {
    const source = facts.source.find((probe) => probe.name === name);
    const target = facts.target.find((probe) => probe.name === name);
    const check = `volume ${name}`;
    const refused = sourceVolumeCheck(container, name, source, facts.unreadable.source);
    if (refused || !source?.info) {
      if (refused) checks.push(refused);
      continue;
    }
    if (!target) {
      checks.push({
        host: 'target',
        name: check,
        status: 'warn',
        observed: `could not be read (${facts.unreadable.target ?? 'docker volume inspect'})`,
        expected: `no volume "${name}" on the target, or an empty one`,
        remedy: 'see the preflight log for the command that failed on this host',
        code: 'FACT_UNREADABLE',
      });
      continue;
    }
    const size = source.sizeBytes === undefined ? '' : ` (${source.sizeBytes} bytes)`;
    const copied = hasOptions(source.info)
      ? 'created with the same driver options; its data stays where the options point'
      : `its contents${size} copied`;
    if (!target.info) {
      checks.push({
        host: 'target',
        name: check,
        status: hasOptions(source.info) ? 'warn' : 'pass',
        observed: `not on the target: created there, ${copied}`,
        expected: `no volume "${name}" on the target, or an empty one`,
        ...(hasOptions(source.info)
          ? {
              remedy: `make sure what the options of "${name}" name (${describeOptions(source.info)}) is reachable from the target`,
              code: 'VOLUME_MISSING' as const,
            }
          : {}),
      });
      continue;
    }
    if (target.info.driver !== 'local') {
      checks.push({
        host: 'target',
        name: check,
        status: 'fail',
        observed: `"${name}" exists on the target with driver ${target.info.driver}`,
        expected: `no volume "${name}" on the target, or an empty local one`,
        remedy: `remove or rename the target's volume "${name}" (docker volume rm ${name}) and run again`,
        code: 'VOLUME_TARGET_NOT_EMPTY',
      });
      continue;
    }
    if (target.users.length > 0) {
      checks.push({
        host: 'target',
        name: check,
        status: 'fail',
        observed: `"${name}" exists on the target and is used by ${target.users.map((user) => user.name).join(', ')}`,
        expected: `no volume "${name}" on the target, or one no container uses`,
        remedy: `remove the target's containers using "${name}", or migrate to another host`,
        code: 'VOLUME_TARGET_NOT_EMPTY',
      });
      continue;
    }
    if (hasOptions(target.info) && !hasOptions(source.info)) {
      // Mounted, such a volume shows what its options point to; a copy into _data would be hidden.
      checks.push({
        host: 'target',
        name: check,
        status: options.useTargetOptions ? 'warn' : 'fail',
        observed: options.useTargetOptions
          ? `"${name}" exists on the target with driver options (${describeOptions(target.info)}): used as it is, nothing copied into it (volume-use-target-options: true)`
          : `"${name}" exists on the target with driver options (${describeOptions(target.info)}): the container would see what they point to, not the copied contents`,
        expected: `no volume "${name}" on the target, or a plain local one (no driver options)`,
        remedy: options.useTargetOptions
          ? `make sure what the options point to holds the data the container expects, or set volume-use-target-options: false`
          : `remove it on the target (docker volume rm ${name}) so the run creates a plain one and copies the data, or set volume-use-target-options: true if what its options point to already holds the data (nothing is copied then)`,
        code: 'VOLUME_TARGET_HAS_OPTIONS',
      });
      continue;
    }
    if (target.hasContent && !options.replace) {
      checks.push({
        host: 'target',
        name: check,
        status: 'fail',
        observed: `"${name}" exists on the target with other contents`,
        expected: `no volume "${name}" on the target, or an empty one`,
        remedy: `set volume-replace: true to replace the target's "${name}" with the source's contents (the old contents are kept until the run succeeds, then removed), or remove it on the target (docker volume rm ${name})`,
        code: 'VOLUME_TARGET_NOT_EMPTY',
      });
      continue;
    }
    checks.push({
      host: 'target',
      name: check,
      status: target.hasContent ? 'warn' : 'pass',
      observed: target.hasContent
        ? `"${name}" exists on the target with other contents: replaced (volume-replace: true)`
        : `"${name}" exists empty on the target: filled, ${copied}`,
      expected: `no volume "${name}" on the target, or an empty one`,
      ...(target.hasContent
        ? {
            remedy: 'set volume-replace: false to keep the target volume',
            code: 'VOLUME_TARGET_NOT_EMPTY' as const,
          }
        : {}),
    });
  }
  return checks;
}

/**
 * What to do with each moved volume, once the gate has passed (which it only
 * does when every volume was readable and none is refused).
 */
export function planVolumes(container: ContainerInspect, facts: VolumeFacts): VolumePlan[] {
  const plans: VolumePlan[] = [];
  for (const name of movedVolumeNames(container)) {
    const source = facts.source.find((probe) => probe.name === name);
    const target = facts.target.find((probe) => probe.name === name);
    if (!source?.info) continue;
    plans.push({
      name,
      source: source.info,
      ...(source.sizeBytes === undefined ? {} : { sizeBytes: source.sizeBytes }),
      target: target?.info
        ? { action: 'replace', mountpoint: target.info.mountpoint, hadContent: target.hasContent }
        : { action: 'create' },
      // A target volume with options is used as it is (the gate refuses it unless allowed).
      copyContents: !hasOptions(source.info) && !(target?.info && hasOptions(target.info)),
    });
  }
  return plans;
}

const MARK = '@@criu-migrate-volume';

/** One shell command that prints what parseVolumeProbes reads, for each volume named. */
export function volumeProbeScript(names: readonly string[]): string {
  return names
    .map((name) => {
      const q = shellQuote([name]);
      return [
        `printf '${MARK} %s\\n' ${q}`,
        `printf '${MARK}-inspect\\n'; docker volume inspect --format '{{json .}}' ${q} 2>/dev/null`,
        `printf '${MARK}-users\\n'; docker ps --filter volume=${q} --format '{{.ID}} {{.Names}}' 2>/dev/null`,
        `mp=$(docker volume inspect --format '{{.Mountpoint}}' ${q} 2>/dev/null)`,
        `printf '${MARK}-size\\n'; [ -n "$mp" ] && [ -d "$mp" ] && du -sb "$mp" 2>/dev/null | cut -f1`,
        `printf '${MARK}-entry\\n'; [ -n "$mp" ] && [ -d "$mp" ] && find "$mp" -mindepth 1 -maxdepth 1 2>/dev/null | head -n 1`,
      ].join('\n');
    })
    .concat('true')
    .join('\n');
}

function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) if (typeof entry === 'string') out[key] = entry;
  return out;
}

/** Parses one `docker volume inspect --format '{{json .}}'` line. */
export function parseVolumeInfo(line: string): VolumeInfo | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.Name !== 'string' || typeof record.Mountpoint !== 'string') return undefined;
  return {
    name: record.Name,
    driver: typeof record.Driver === 'string' ? record.Driver : 'local',
    mountpoint: record.Mountpoint,
    options: stringMap(record.Options),
    labels: stringMap(record.Labels),
  };
}

/** Parses the output of volumeProbeScript. */
export function parseVolumeProbes(stdout: string): VolumeProbe[] {
  const probes: VolumeProbe[] = [];
  let current: VolumeProbe | undefined;
  let section = '';
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith(`${MARK} `)) {
      current = { name: line.slice(MARK.length + 1), users: [], hasContent: false };
      probes.push(current);
      section = '';
      continue;
    }
    if (line.startsWith(`${MARK}-`)) {
      section = line.slice(MARK.length + 1);
      continue;
    }
    if (!current || line === '') continue;
    if (section === 'inspect') {
      const info = parseVolumeInfo(line);
      if (info) current.info = info;
    } else if (section === 'users') {
      const [id, name] = line.split(' ');
      if (id && name) current.users.push({ id, name });
    } else if (section === 'size' && /^\d+$/.test(line)) {
      current.sizeBytes = Number(line);
    } else if (section === 'entry') {
      current.hasContent = true;
    }
  }
  return probes;
}

// GNU tar: everything a volume's files carry. --listed-incremental makes the
// second pass send only what changed since the first, and deletions; extracting
// with --listed-incremental=/dev/null applies those deletions.
const VOLUME_TAR = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

/**
 * The sending tar of one pass. The bulk pass reads a volume the container is
 * still writing: tar's "file changed as we read it" (exit 1) is expected there,
 * and the frozen pass sends those files again.
 */
export function volumeSendCommand(mountpoint: string, snapshot: string, live: boolean): string {
  const tar = shellQuote([
    'tar',
    '-C',
    mountpoint,
    `--listed-incremental=${snapshot}`,
    ...VOLUME_TAR,
    '--sparse',
    ...(live ? ['--warning=no-file-changed', '--warning=no-file-removed', '--warning=no-file-shrank'] : []),
    '-cf',
    '-',
    '.',
  ]);
  return live ? `${tar}; s=$?; [ "$s" -eq 1 ] && s=0; exit "$s"` : tar;
}

/** The receiving tar: extracts into the target volume, deleting what the source deleted. */
export function volumeReceiveCommand(mountpoint: string): string {
  return shellQuote([
    'tar',
    '-C',
    mountpoint,
    '--listed-incremental=/dev/null',
    ...VOLUME_TAR,
    '--same-owner',
    '-xpf',
    '-',
  ]);
}

/** `docker volume create` arguments for a volume like the source's. */
export function volumeCreateArgs(info: VolumeInfo): string[] {
  const args = ['volume', 'create', '--driver', info.driver];
  for (const [key, value] of Object.entries(info.options).sort()) args.push('--opt', `${key}=${value}`);
  for (const [key, value] of Object.entries(info.labels).sort()) args.push('--label', `${key}=${value}`);
  args.push(info.name);
  return args;
}

/** Where a replaced volume's old contents wait until the run commits (beside its _data). */
export function asideDir(mountpoint: string, checkpointName: string): string {
  return `${mountpoint.replace(/\/+$/, '')}.criu-migrate-${checkpointName}`;
}
