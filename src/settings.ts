import { formatHostSpec, type HostSpec } from './host/host-spec.js';
import type { RouteSetting } from './policy/direct-route.js';
import type { Selection } from './policy/selection.js';

export const MODES = ['migrate', 'preflight', 'checkpoint', 'restore', 'drill', 'list'] as const;
export type Mode = (typeof MODES)[number];

export const SOURCE_AFTER = ['stop', 'remove'] as const;
export type SourceAfter = (typeof SOURCE_AFTER)[number];

export const COMPRESSIONS = ['auto', 'zstd', 'gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** eager: every page moves while frozen; lazy: post-copy, the pages follow the restored container. */
export const MEMORY_MODES = ['eager', 'lazy', 'overlap'] as const;
export type MemoryMode = (typeof MEMORY_MODES)[number];

export const KERNEL_POLICIES = ['same-minor', 'exact', 'any'] as const;
export type KernelPolicy = (typeof KERNEL_POLICIES)[number];

/** Where a host is: the runner itself, or over SSH. */
export type HostLocation = { kind: 'local' } | { kind: 'ssh'; spec: HostSpec };

/** A host as the inputs named it, for reports written before (or without) connecting. */
export function describeLocation(location: HostLocation): string {
  return location.kind === 'local' ? 'local' : formatHostSpec(location.spec);
}

export interface SshSettings {
  /** Private key text (from ssh-key, or read from ssh-key-path). */
  privateKey?: string;
  passphrase?: string;
  /** known_hosts text; host keys are always checked against it unless skipped. */
  knownHosts: string;
  insecureSkipHostKeyCheck: boolean;
  jumpHost?: HostSpec;
}

/** Where checkpoints are kept: a directory on a host reached like the others (it needs no Docker). */
export interface StoreSettings {
  host: HostLocation;
  /** Absolute path of the store directory on that host. */
  path: string;
}

/** What every mode reads. */
interface CommonSettings {
  container: string;
  /** The container's host (in restore mode: where it ran, the store's default host). */
  source: HostLocation;
  ssh: SshSettings;
  sudo: boolean;
  /** Names this run: its work directories, its journal and the checkpoint it writes. */
  checkpointName: string;
  timeoutMinutes: number;
  uploadArtifact: boolean;
  artifactName: string;
  /** Days the artifact is kept; the repository's setting when undefined. */
  artifactRetentionDays?: number;
  kernelPolicy: KernelPolicy;
  strict: boolean;
  /** How streams between hosts are compressed; auto means zstd when both ends have it. */
  compression: Compression;
  /** Copy named volumes' bulk while the container runs, then only the changes while frozen. */
  volumePrecopy: boolean;
  /** Replace a target volume of the same name that holds other contents (refused otherwise). */
  volumeReplace: boolean;
  /** A target volume with driver options (NFS, o=bind) is used as it is instead of refused. */
  volumeUseTargetOptions: boolean;
  /** docker28-network-holder: bridge and user networks onto Docker 28/29 through a network holder. */
  networkHolder: boolean;
}

/** Checking the restored container before the run commits to it. */
export interface VerifySettings {
  verifyLogPattern?: RegExp;
  verifyTimeoutSeconds: number;
  /** How long the restored container must stay up, unrestarted, before the run commits. */
  verifyStableSeconds: number;
  /** Print the restored container's last log lines into the job log when verification fails. */
  verifyShowLogs: boolean;
}

export interface MigrateSettings extends CommonSettings, VerifySettings {
  mode: 'migrate';
  target: HostLocation;
  sourceAfter: SourceAfter;
  /** lazy: the container runs on the target before its memory has arrived (post-copy). */
  memory: MemoryMode;
  /** How the container's bytes travel: host to host (direct), through the runner (relay), or direct when it can (auto). */
  route: RouteSetting;
  /** Seconds without a byte moving before a stream between the hosts fails (TRANSFER_FAILED) and the run rolls back. */
  streamStallSeconds?: number;
  /** A compose project moved as one unit (the unit input compose:<project>); container is then its record name. */
  compose?: { project: string };
  /** Create the target container with the source's current addresses on user networks, static or not (members of a moving unit). */
  keepAddresses?: boolean;
}

export interface PreflightSettings extends CommonSettings {
  mode: 'preflight';
  target: HostLocation;
  /** lazy: the gate also runs the post-copy checks migrate's gate runs for memory: lazy. */
  memory: MemoryMode;
  /** The route a migration would be asked to take: the report says whether the source reaches the target. */
  route: RouteSetting;
  /** Several containers of the source, gated unit by unit (container is then "selection"). */
  selection?: Selection;
}

export interface CheckpointSettings extends CommonSettings {
  mode: 'checkpoint';
  store: StoreSettings;
  /** Newest complete checkpoints of this container to keep; 0 keeps all. */
  retention: number;
  /** Resume the container after the dump (true) or stop it (planned shutdown of its host). */
  leaveRunning: boolean;
  /** A compose project checkpointed as one unit (unit: compose:<project>); container is then its record name. */
  compose?: { project: string };
  /** How the checkpoint's bytes reach the store: from the source itself (direct), through the runner (relay), or direct when it can (auto). */
  route: RouteSetting;
}

export interface RestoreSettings extends CommonSettings, VerifySettings {
  mode: 'restore';
  target: HostLocation;
  store: StoreSettings;
  /** The checkpoint to restore; undefined means the newest complete one of the container. */
  restoreFrom?: string;
  /** The checkpoint series to restore from, when several containers' series share the name. */
  series?: string;
  /** Remove a stopped container of the same name on the target first (a running one is always refused). */
  replace: boolean;
  /** A compose project restored as one unit from its unit checkpoint (unit: compose:<project>). */
  compose?: { project: string };
  /** Create the container with the addresses it had at the checkpoint (members of a unit). */
  keepAddresses?: boolean;
  /** How the checkpoint's bytes leave the store: host to host into the target (direct), through the runner (relay), or direct when it can (auto). */
  route: RouteSetting;
}

/**
 * Restore drill: a stored checkpoint restored as a throw-away copy (own name, no network, copies
 * of its volumes) on the target, verified for the stability window, then removed with all it made.
 */
export interface DrillSettings extends CommonSettings, VerifySettings {
  mode: 'drill';
  target: HostLocation;
  store: StoreSettings;
  /** The checkpoint to drill; undefined means the newest complete one of the container. */
  restoreFrom?: string;
  series?: string;
  /** How the checkpoint's bytes leave the store for the drill host, as in restore mode. */
  route: RouteSetting;
  /** Set by drill mode to its lock's key: a restore of the same checkpoint beside it keeps its own files. */
  workKey?: string;
}

/** Read-only listing of the store: one container's series (by name, or one series), or every container's. */
export interface ListSettings extends CommonSettings {
  mode: 'list';
  store: StoreSettings;
  /** Empty container: every container in the store. */
  series?: string;
}

/** Every input, read and validated once by getInputs(): each mode sees only what it uses. */
export type Settings =
  | MigrateSettings
  | PreflightSettings
  | CheckpointSettings
  | RestoreSettings
  | DrillSettings
  | ListSettings;

/** The settings a host connection needs. */
export type ConnectionSettings = Pick<CommonSettings, 'ssh' | 'sudo'>;
