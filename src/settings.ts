import type { HostSpec } from './host/host-spec.js';

export const MODES = ['migrate', 'preflight', 'checkpoint', 'restore'] as const;
export type Mode = (typeof MODES)[number];

export const SOURCE_AFTER = ['stop', 'remove'] as const;
export type SourceAfter = (typeof SOURCE_AFTER)[number];

export const COMPRESSIONS = ['auto', 'zstd', 'gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const KERNEL_POLICIES = ['same-minor', 'exact', 'any'] as const;
export type KernelPolicy = (typeof KERNEL_POLICIES)[number];

/** Where a host is: the runner itself, or over SSH. */
export type HostLocation = { kind: 'local' } | { kind: 'ssh'; spec: HostSpec };

export interface SshSettings {
  /** Private key text (from ssh-key, or read from ssh-key-path). */
  privateKey?: string;
  passphrase?: string;
  /** known_hosts text; host keys are always checked against it unless skipped. */
  knownHosts: string;
  insecureSkipHostKeyCheck: boolean;
  jumpHost?: HostSpec;
}

/** Every input, read and validated once by getInputs(). */
export interface Settings {
  mode: Mode;
  container: string;
  source: HostLocation;
  target?: HostLocation;
  ssh: SshSettings;
  sudo: boolean;
  checkpointName: string;
  verifyLogPattern?: RegExp;
  verifyTimeoutSeconds: number;
  /** How long the restored container must stay up, unrestarted, before the source is retired. */
  verifyStableSeconds: number;
  sourceAfter: SourceAfter;
  timeoutMinutes: number;
  uploadArtifact: boolean;
  artifactName: string;
  kernelPolicy: KernelPolicy;
  strict: boolean;
  /** How streams between the hosts are compressed; auto means zstd when both hosts have it. */
  compression: Compression;
}
