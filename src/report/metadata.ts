import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdirP } from '@actions/io';
import { type ErrorCode, errorMessage, MigrationError } from '../errors.js';
import type { Mode } from '../settings.js';
import type { PhaseTimings } from './timings.js';

/** Bump when a field changes meaning or is removed; adding optional fields keeps the version. */
export const METADATA_SCHEMA_VERSION = 1;

/**
 * succeeded: the container runs on the target. refused: stopped before touching
 * the container. rolled-back: failed after the freeze and the source was resumed.
 * resumed: finished a migration an earlier run left after its target was verified.
 * failed: anything else, including a rollback that did not complete.
 */
export const RUN_STATUSES = ['succeeded', 'refused', 'rolled-back', 'resumed', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface HostFacts {
  /** "local", or the SSH destination as user@host:port. */
  address: string;
  kernel?: string;
  arch?: string;
  criu?: string;
  docker?: string;
  containerd?: string;
  runc?: string;
}

export interface ContainerFacts {
  name: string;
  sourceId?: string;
  targetId?: string;
  imageId?: string;
  /** The image reference the container was created from, e.g. "nginx:1.27". */
  imageRef?: string;
}

export const STREAM_KINDS = ['checkpoint', 'pages', 'writableLayer', 'image'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

export interface StreamDigest {
  bytes: number;
  /** Hex sha256, computed on both ends and found equal. */
  sha256: string;
  /** How long the stream took. */
  ms?: number;
  /** How it travelled between the hosts ('none': raw), and why (compression: auto samples each stream). */
  codec?: 'zstd' | 'gzip' | 'none';
  codecReason?: string;
}

export interface CheckpointFacts {
  name: string;
  /** Size of the CRIU images. */
  bytes?: number;
  /** Everything sent between the hosts: checkpoint, writable layer and image if it moved. */
  transferredBytes?: number;
  /**
   * One entry per stream that was sent; image only when the target lacked it, pages only with
   * memory: overlap (the dump's pages, sent to the target's page server while it ran).
   */
  streams: Partial<Record<StreamKind, StreamDigest>>;
  /**
   * How Docker's checkpoint directory was built on the target: pages staged
   * and linked (containerd copies only the small images), or every image in
   * it (containerd copies the pages twice before CRIU runs), with the reason.
   */
  restorePath?: RestorePathKind;
  restorePathReason?: string;
}

export type RestorePathKind = 'staged-pages' | 'full-copy';

export function restorePathFacts(
  path: { path: 'staged-pages' } | { path: 'full-copy'; reason: string },
): Pick<CheckpointFacts, 'restorePath' | 'restorePathReason'> {
  return path.path === 'full-copy'
    ? { restorePath: path.path, restorePathReason: path.reason }
    : { restorePath: path.path };
}

export interface TimingFacts {
  phasesMs: PhaseTimings;
  /** From freezing the source to the target running. */
  downtimeMs?: number;
  durationMs?: number;
  /** memory: lazy: from freezing the source to the last page arriving on the target (the source is frozen until then). */
  lastPageMs?: number;
  /** memory: lazy: the memory bytes that followed the restored container through the runner. */
  lazyPageBytes?: number;
  /**
   * The frozen window by step (ms, in the run's order: pause, dump, checkpoint, transfer,
   * lazy-daemon, restore) and `commands`: commands sent to the hosts inside it.
   */
  frozenWindowMs?: Record<string, number>;
}

/** CRIU's own statistics (stats-dump / stats-restore), times in microseconds as CRIU reports them. */
export interface CriuStats {
  freezingTimeUs?: number;
  frozenTimeUs?: number;
  memdumpTimeUs?: number;
  memwriteTimeUs?: number;
  pagesScanned?: number;
  pagesWritten?: number;
  restoreTimeUs?: number;
  pagesRestored?: number;
}

/** One pass of a volume's contents between the hosts. */
export interface VolumePassFacts {
  /** bulk: while the container ran; frozen: the changes (or everything) while it was frozen. */
  pass: 'bulk' | 'frozen';
  bytes: number;
  sha256: string;
  ms: number;
}

/** A named volume that moved with the container. */
export interface VolumeFacts {
  name: string;
  /** Bytes under the source's mount point when the run looked (du -sb). */
  sizeBytes?: number;
  /** created: made on the target by this run; replaced: the target's volume got the source's contents; stored: kept with a checkpoint. */
  target: 'created' | 'replaced' | 'stored';
  /** False for a volume with driver options: it was created, its data stays where the options point. */
  contentsMoved: boolean;
  passes: VolumePassFacts[];
  /** sha256 of the last stream (the frozen pass), checked on both hosts. */
  sha256?: string;
}

export interface MetadataError {
  code: ErrorCode | 'UNEXPECTED';
  message: string;
  step?: string;
  host?: string;
  remedy?: string;
}

/** What a run did, written as JSON. Holds facts and sizes only, never memory contents. */
export interface MigrationMetadata {
  schemaVersion: typeof METADATA_SCHEMA_VERSION;
  run: {
    mode: Mode;
    status: RunStatus;
    /** ISO 8601, UTC. */
    startedAt: string;
    finishedAt?: string;
  };
  hosts: {
    source: HostFacts;
    target?: HostFacts;
  };
  container: ContainerFacts;
  checkpoint: CheckpointFacts;
  timings: TimingFacts;
  criu?: CriuStats;
  error?: MetadataError;
  /** After the commit point: what could not be cleaned up, each with what to do. */
  leftovers?: string[];
  /** An earlier run's journal this run found open and finished (rolled back or forward). */
  resumed?: ResumedRun;
  /** Named volumes that moved with the container. */
  volumes?: VolumeFacts[];
  /** Checkpoint mode: the container's complete checkpoints in the store after retention, newest first. */
  storedCheckpoints?: string[];
  /** Drill mode: what the drill found. */
  drill?: DrillFacts;
  /** Which way the container's bytes went between the hosts, and how many crossed the runner. */
  route?: RouteFacts;
}

/** The route the run chose and what each stream took. */
export interface RouteFacts {
  /** The route input. */
  requested: 'auto' | 'direct' | 'relay';
  /** What the streams took: host to host (direct) or through the runner (relay). */
  taken: 'direct' | 'relay';
  reason: string;
  /** What the source saw of the target's SSH server in preflight, when it was asked. */
  reach?: string;
  streams: { label: string; route: 'direct' | 'relay'; bytes: number; runnerBytes: number }[];
  /** Bytes of container data (images, layer, volumes, image, lazy pages) that passed the runner. */
  runnerBytes: number;
}

/** A restore drill's result. */
export interface DrillFacts {
  /** "true", "false" (the checkpoint's fault) or "unknown" (the drill could not tell). */
  restorable: 'true' | 'false' | 'unknown';
  /** Why not, "CODE: message". */
  reason?: string;
  /** The throw-away copy's name (removed again). */
  copy?: string;
  /** Its first process (docker top), and how many lines it logged after the restore (never their text). */
  firstProcess?: string;
  logLines?: number;
  /** How long it was watched running (verify-stable-seconds and the log pattern). */
  watchedMs?: number;
  series?: string;
  /** Whether the result was written next to the checkpoint in the store. */
  recorded?: boolean;
}

export interface ResumedRun {
  checkpointName: string;
  direction: 'rollback' | 'roll-forward' | 'nothing';
  owner: string;
  done: string[];
  problems: string[];
}

/** The error part of the metadata: code, message and where, without causes or log details. */
export function metadataError(error: unknown): MetadataError {
  if (!(error instanceof MigrationError)) return { code: 'UNEXPECTED', message: errorMessage(error) };
  const result: MetadataError = { code: error.code, message: error.message };
  if (error.step) result.step = error.step;
  if (error.host) result.host = error.host;
  if (error.remedy) result.remedy = error.remedy;
  return result;
}

export async function writeMetadata(path: string, metadata: MigrationMetadata): Promise<void> {
  await mkdirP(dirname(path));
  await writeFile(path, `${JSON.stringify(metadata, null, 2)}\n`, 'utf8');
}
