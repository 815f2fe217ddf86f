import type { ContainerInspect, MountSpec } from '../engine/docker/inspect.js';
import type { ErrorCode } from '../errors.js';
import { shellQuote } from '../host/shell.js';
import type { StoredVolume } from '../state/store.js';
import type { VolumeInfo } from './volumes.js';

/**
 * Restore drills: a stored checkpoint restored as a throw-away copy, so a
 * checkpoint is known to restore before it is needed. The copy must never
 * reach what the original reaches: no network, no published ports, no restart
 * policy, and copies of its volumes instead of the volumes themselves.
 */

/** Every container and volume a drill makes carries this label, valued with the drill's ID. */
export const DRILL_LABEL = 'org.criu-migrate.drill';
/** The container the drill copies, and the checkpoint it came from. */
export const DRILL_OF_LABEL = 'org.criu-migrate.drill-of';
export const DRILL_CHECKPOINT_LABEL = 'org.criu-migrate.drill-checkpoint';

/** The file next to a checkpoint in the store that holds its newest drill's result. */
export const DRILL_RECORD_FILE = 'drill.json';

const NAME_LIMIT = 200;

/** Eight hex characters of the run's random token: names the drill's container and volumes. */
export function drillId(token: string): string {
  const hex = token.toLowerCase().replace(/[^0-9a-f]/g, '');
  return `${hex}00000000`.slice(0, 8);
}

export function drillName(container: string, id: string): string {
  const suffix = `-drill-${id}`;
  return `${container.slice(0, NAME_LIMIT - suffix.length)}${suffix}`;
}

export function drillVolumeName(volume: string, id: string): string {
  const suffix = `-drill-${id}`;
  return `${volume.slice(0, NAME_LIMIT - suffix.length)}${suffix}`;
}

/**
 * Where a drill keeps its journal and lock on the hosts: one key per container
 * (not per drill), so the next drill of that container finds and settles a
 * cancelled one, and never the original container's journal.
 */
export function drillJournalKey(container: string): string {
  return `${container.slice(0, NAME_LIMIT - 6)}-drill`;
}

/** Why a checkpoint cannot be drilled safely: not a verdict on the checkpoint. */
export interface DrillObstacle {
  errorCode: Extract<ErrorCode, 'DRILL_NEEDS_NETWORK' | 'DRILL_MOUNT_NOT_COPIED'>;
  problem: string;
}

function bindSource(bind: string): string {
  return bind.split(':')[0] ?? '';
}

/**
 * What keeps a checkpoint from being drilled without touching the original:
 * the host's network (its sockets would land in the original's ports), bind
 * mounts (their source is the original's data), volumes whose contents are not
 * in the store (other drivers, driver options: the copy would use the same data)
 * and volumes taken from another container.
 */
export function drillObstacles(
  container: ContainerInspect,
  stored: readonly StoredVolume[],
): DrillObstacle[] {
  const obstacles: DrillObstacle[] = [];
  const host = container.HostConfig;
  if ((host.NetworkMode ?? 'default') === 'host') {
    obstacles.push({
      errorCode: 'DRILL_NEEDS_NETWORK',
      problem:
        "it uses the host's network: restored without a network its sockets would not be where they were, and restored with it they would take the original's ports",
    });
  }
  const copied = new Set(stored.filter((volume) => volume.contentsMoved).map((volume) => volume.name));
  const keptWithoutContents = new Set(
    stored.filter((volume) => !volume.contentsMoved).map((volume) => volume.name),
  );
  for (const mount of container.Mounts) {
    if (mount.Type === 'bind') {
      obstacles.push({
        errorCode: 'DRILL_MOUNT_NOT_COPIED',
        problem: `bind mount ${mount.Source} at ${mount.Destination}: its contents are not in the store, and the copy must not use the original's files`,
      });
    } else if (mount.Type === 'volume' && mount.Name && !copied.has(mount.Name)) {
      if (keptWithoutContents.has(mount.Name)) {
        obstacles.push({
          errorCode: 'DRILL_MOUNT_NOT_COPIED',
          problem: `volume ${mount.Name} at ${mount.Destination} has driver options: its data lives where they point, so a copy would use the original's data`,
        });
      } else if (isNamed(container, mount.Name)) {
        obstacles.push({
          errorCode: 'DRILL_MOUNT_NOT_COPIED',
          problem: `volume ${mount.Name} at ${mount.Destination} (driver ${mount.Driver ?? 'local'}) is not kept in the store`,
        });
      }
    }
  }
  for (const from of host.VolumesFrom ?? []) {
    obstacles.push({
      errorCode: 'DRILL_MOUNT_NOT_COPIED',
      problem: `it mounts the volumes of container ${from}`,
    });
  }
  return obstacles;
}

/** Named in -v/--mount, rather than an anonymous volume Docker makes afresh for the copy. */
function isNamed(container: ContainerInspect, name: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(name)) return true;
  const host = container.HostConfig;
  return (
    (host.Binds ?? []).some((bind) => bindSource(bind) === name) ||
    (host.Mounts ?? []).some((mount) => mount.Source === name)
  );
}

export interface DrillIdentity {
  /** The drill's ID (drillId). */
  id: string;
  /** The checkpoint it restores. */
  checkpoint: string;
}

/**
 * The stored container's configuration, turned into the drill's copy: its own
 * name, network none (no ports, aliases, DNS or links), restart policy no, the
 * drill's labels, and each stored volume replaced by its throw-away copy.
 * Callers check drillObstacles first: bind mounts are left as they are here.
 */
export function drillInspect(container: ContainerInspect, drill: DrillIdentity): ContainerInspect {
  const original = container.Name.replace(/^\//, '');
  const rename = (name: string): string => drillVolumeName(name, drill.id);
  const named = (name: string): boolean => isNamed(container, name);
  const binds = (container.HostConfig.Binds ?? []).map((bind) => {
    const source = bindSource(bind);
    if (source === '' || source.startsWith('/') || !named(source)) return bind;
    return `${rename(source)}${bind.slice(source.length)}`;
  });
  const mounts = (container.HostConfig.Mounts ?? []).map(
    (mount): MountSpec =>
      mount.Type === 'volume' && mount.Source ? { ...mount, Source: rename(mount.Source) } : mount,
  );
  for (const anonymous of anonymousVolumeMounts(container, drill.id)) {
    mounts.push({ Type: 'volume', Source: anonymous.name, Target: anonymous.destination });
  }
  return {
    ...container,
    Name: `/${drillName(original, drill.id)}`,
    Config: {
      ...container.Config,
      ExposedPorts: {},
      Labels: {
        ...container.Config.Labels,
        [DRILL_LABEL]: drill.id,
        [DRILL_OF_LABEL]: original,
        [DRILL_CHECKPOINT_LABEL]: drill.checkpoint,
      },
    },
    HostConfig: {
      ...container.HostConfig,
      NetworkMode: 'none',
      PortBindings: {},
      PublishAllPorts: false,
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      Dns: [],
      DnsSearch: [],
      DnsOptions: [],
      ExtraHosts: [],
      Links: [],
      Binds: binds,
      Mounts: mounts,
    },
    Mounts: container.Mounts.map((mount) =>
      mount.Type === 'volume' && mount.Name && named(mount.Name)
        ? { ...mount, Name: rename(mount.Name) }
        : mount,
    ),
    NetworkSettings: { Networks: {} },
  };
}

/** The stored volumes as the drill's copies: renamed and labelled, their archives still the stored ones. */
export function drillVolumes(stored: readonly StoredVolume[], drill: DrillIdentity): StoredVolume[] {
  return stored.map((volume) => {
    const info: VolumeInfo = {
      ...volume.info,
      name: drillVolumeName(volume.name, drill.id),
      labels: { ...volume.info.labels, [DRILL_LABEL]: drill.id },
    };
    return { ...volume, name: info.name, info };
  });
}

/** What a drill found: restorable, not restorable (the checkpoint's fault), or not known (the drill could not tell). */
export type DrillVerdict = 'true' | 'false' | 'unknown';

/**
 * The codes whose failure in a drill is the checkpoint's: its files differ
 * from the manifest, CRIU could not restore it, or it did not stay up.
 * Everything else (connections, the drill host's own checks, cancellation)
 * says nothing about the checkpoint.
 */
const CHECKPOINT_FAULTS: ReadonlySet<string> = new Set([
  'CHECKSUM_MISMATCH',
  'RESTORE_FAILED',
  'VERIFY_FAILED',
  'CHECKPOINT_NOT_FOUND',
  'IMAGE_TRANSFER_FAILED',
  'VOLUME_TRANSFER_FAILED',
  'TRANSFER_FAILED',
]);

/**
 * CRIU's words when a socket cannot get its address back: the checkpoint had
 * an address only its network gave it (an IP of its own, not 0.0.0.0).
 */
const NEEDS_NETWORK =
  /Can't bind inet socket|Cannot assign requested address|Can't restore (?:ipv[46] )?(?:addr|route|link)|Can't dump .*netns/i;

export interface DrillFailure {
  code: string;
  message: string;
  detail?: string;
}

/** How a drill's failure reads: the checkpoint's fault, the missing network's, or neither known. */
export function judgeDrillFailure(failure: DrillFailure): { verdict: DrillVerdict; needsNetwork: boolean } {
  const text = `${failure.message}\n${failure.detail ?? ''}`;
  if (failure.code === 'RESTORE_FAILED' && NEEDS_NETWORK.test(text)) {
    return { verdict: 'unknown', needsNetwork: true };
  }
  if (failure.code === 'CHECKPOINT_NOT_FOUND' && !/has no CRIU inventory/.test(failure.message)) {
    // Not found at all is the inputs' matter, not the checkpoint's.
    return { verdict: 'unknown', needsNetwork: false };
  }
  return { verdict: CHECKPOINT_FAULTS.has(failure.code) ? 'false' : 'unknown', needsNetwork: false };
}

/** A drill's result as the store keeps it next to the checkpoint (drill.json). */
export interface DrillRecord {
  schema: 1;
  restorable: boolean;
  /** Why not, "CODE: message"; absent when restorable. */
  reason?: string;
  /** ISO 8601 UTC: when the drill finished. */
  at: string;
  /** The host it ran on, as the action reached it. */
  host: string;
  /** The drill's ID (the copy was named after it). */
  id: string;
  /** How long the copy stayed up under watch (verify-stable-seconds), ms. */
  stableMs?: number;
  githubRunId?: string;
}

export function parseDrillRecord(text: string): DrillRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<DrillRecord>;
    if (value.schema !== 1 || typeof value.restorable !== 'boolean' || typeof value.at !== 'string')
      return undefined;
    return value as DrillRecord;
  } catch {
    return undefined;
  }
}

/** A named volume the drill makes in place of one Docker would make anonymously (an image VOLUME). */
export interface AnonymousReplacement {
  name: string;
  destination: string;
  /** label=value for docker volume create. */
  label: string;
}

/**
 * The container's anonymous volumes, each replaced by a named volume of the
 * drill: Docker fills it from the image as it would an anonymous one, and the
 * drill's journal can remove it (removing a container leaves anonymous volumes).
 */
export function anonymousVolumeMounts(container: ContainerInspect, id: string): AnonymousReplacement[] {
  const original = container.Name.replace(/^\//, '');
  return container.Mounts.filter(
    (mount) => mount.Type === 'volume' && mount.Name !== undefined && !isNamed(container, mount.Name),
  ).map((mount, i) => ({
    name: drillVolumeName(`${original}-anon${i + 1}`, id),
    destination: mount.Destination,
    label: `${DRILL_LABEL}=${id}`,
  }));
}

/** Shell listing what a drill left on its host: its labelled containers and volumes, and the given paths. */
export function drillLeftoversScript(id: string, paths: readonly string[]): string {
  const filter = shellQuote([`label=${DRILL_LABEL}=${id}`]);
  return [
    `docker ps -aq --no-trunc --filter ${filter} | sed 's/^/container /'`,
    `docker volume ls -q --filter ${filter} | sed 's/^/volume /'`,
    ...paths.map((path) => `[ ! -e ${shellQuote([path])} ] || echo ${shellQuote([`files ${path}`])}`),
    'true',
  ].join('\n');
}

/** Each leftover with the command that removes it by hand. */
export function parseDrillLeftovers(stdout: string): string[] {
  const left: string[] = [];
  for (const line of stdout.split('\n')) {
    const [kind, ...rest] = line.trim().split(' ');
    const what = rest.join(' ');
    if (what === '') continue;
    if (kind === 'container') left.push(`drill container ${what.slice(0, 12)}: docker rm -f ${what}`);
    else if (kind === 'volume') left.push(`drill volume ${what}: docker volume rm ${what}`);
    else if (kind === 'files') left.push(`drill files ${what}: rm -rf -- ${what}`);
  }
  return left;
}
