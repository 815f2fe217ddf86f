import type { Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import type { CheckpointNetwork } from '../policy/network-route.js';
import type { VolumeInfo } from '../policy/volumes.js';
import type { VolumePassFacts } from '../report/metadata.js';

/**
 * The checkpoint store, a directory on any host with sh, tar and sha256sum:
 *   <store>/<container>/<series>/series.json        which container started the series, and where
 *   <store>/<container>/<series>/<name>/            one complete checkpoint (only complete ones have this name)
 *       manifest.json                              what is in it, with the sha256 and size of every file
 *       criu/                                      CRIU's images
 *       cpu/cpuinfo.img                            the source's CPU, for `criu cpuinfo check` on a target
 *       layer/bulk.tar, layer/frozen.tar           the writable layer: before the freeze, then what changed up
 *                                                  to it (GNU tar --listed-incremental, xattrs, whiteouts)
 *       config.json                                docker inspect of the container and its image's config
 *       volumes/<volume>/bulk.tar                  a named volume before the freeze (GNU tar, --listed-incremental)
 *       volumes/<volume>/frozen.tar                what changed in it up to the freeze (or all of it)
 *   <store>/<container>/<series>/.<name>.partial/   being written; never listed; image.ref names the image it uses
 *   <store>/<container>/<series>/.lock/             held by the one run writing into the series
 *   <store>/<container>/<series>/.lock.guard        flock file: one takeover or release of .lock at a time
 *   <store>/images/<image id>.tar                  docker save of an image, once per image ID
 *   <store>/images/.lock/                          held while an image is looked for, added or collected
 * A series is one container's checkpoints, across its migrations: its ID is
 * the short ID of the container it started with (see state/series.ts).
 * Stores written before series existed keep checkpoints at <store>/<container>/<name>/
 * (one layer.tar): read where they are, moved into their series by the next checkpoint run.
 */
export const MANIFEST_SCHEMA = 1;

export interface StoredFile {
  /** Relative to the checkpoint directory (or the store, for the image). */
  path: string;
  bytes: number;
  sha256: string;
}

export interface CheckpointManifest {
  schema: typeof MANIFEST_SCHEMA;
  name: string;
  container: { name: string; id: string; imageId: string; imageRef: string };
  /** The series the checkpoint belongs to (absent in checkpoints taken before series existed). */
  series?: string;
  createdAt: string;
  /** The source's versions when the checkpoint was taken. */
  versions: {
    kernel?: string;
    criu?: string;
    docker?: string;
    containerd?: string;
    runc?: string;
    arch?: string;
    /** "1" or "2": a checkpoint restores only on a host of the same cgroup version. */
    cgroupVersion?: string;
    cgroupDriver?: string;
  };
  source: string;
  /** How CRIU dumped it, which its restore must match (absent in older checkpoints: nothing special). */
  dump?: { tcpEstablished: boolean };
  frozenMs: number;
  phasesMs: Record<string, number>;
  files: StoredFile[];
  image: StoredFile;
  /** Named volumes kept with the checkpoint (absent in checkpoints taken before volumes moved). */
  volumes?: StoredVolume[];
  /** The writable layer's archives, extracted in order (absent: one layer.tar, copied after the freeze). */
  layer?: { archives: string[] };
  /** Regular files of the layer the processes had open, as CRIU recorded them and as stored. */
  openFiles?: OpenFileCheck[];
  /** The targets the checkpoint can go to (absent in checkpoints taken before it was recorded: direct). */
  network?: CheckpointNetwork;
}

/** One open file of the layer: what CRIU expects of it at restore, and what the stored layer holds. */
export interface OpenFileCheck {
  path: string;
  /** The size CRIU checks at restore (files not opened write-only-append). */
  criuSize?: number;
  /** Largest file offset of a write-only-append descriptor (CRIU checks nothing for those). */
  appendOffset?: number;
  /** The size in the stored layer, undefined when the layer does not hold it (unchanged image file). */
  storedBytes?: number;
}

/** A volume as a checkpoint keeps it: its description and one archive per pass, extracted in order. */
export interface StoredVolume {
  name: string;
  info: VolumeInfo;
  sizeBytes?: number;
  /** False for a volume with driver options: only its description is kept. */
  contentsMoved: boolean;
  /** Relative to the checkpoint directory, in the order they are extracted. */
  archives: string[];
  passes: VolumePassFacts[];
}

/** config.json: docker inspect of the container and of its image, as Docker printed them. */
export interface StoredConfig {
  container: unknown;
  image: unknown;
  /** docker inspect of the network holder the container joined, when it joined one. */
  holder?: unknown;
}

export function containerDir(store: string, container: string): string {
  return `${store}/${container}`;
}

export function seriesDir(store: string, container: string, series: string): string {
  return `${containerDir(store, container)}/${series}`;
}

export function checkpointDir(store: string, container: string, series: string, name: string): string {
  return `${seriesDir(store, container, series)}/${name}`;
}

export function partialDir(store: string, container: string, series: string, name: string): string {
  return `${seriesDir(store, container, series)}/.${name}.partial`;
}

/** Where a store written before series existed keeps a checkpoint. */
export function legacyCheckpointDir(store: string, container: string, name: string): string {
  return `${containerDir(store, container)}/${name}`;
}

/** In a partial checkpoint: the image it uses, written before the image is looked for (collection keeps it). */
export const IMAGE_REF_FILE = 'image.ref';

/** A complete checkpoint as found in the store. */
export interface StoredCheckpoint {
  manifest: CheckpointManifest;
  series: string;
  /** Its directory in the store. */
  dir: string;
  /** Still at the layout from before series (<container>/<name>). */
  legacy: boolean;
}

export function imagePath(imageId: string): string {
  return `images/${imageId.replace(/^sha256:/, '')}.tar`;
}

const QUICK_MS = 60_000;
const HASH_MS = 30 * 60_000;

/** Size and sha256 of every file under a directory (paths relative to it), computed on its host. */
export async function digestFiles(host: Host, dir: string, step: string): Promise<StoredFile[]> {
  const result = await runChecked(
    host,
    `cd ${shellQuote([dir])} && find . -type f ! -name manifest.json -printf '%s %P\\n' | while read -r size path; do printf '%s %s ' "$size" "$(sha256sum <"$path" | cut -d' ' -f1)"; printf '%s\\n' "$path"; done`,
    { step, what: `hashing the files in ${dir}`, options: { timeoutMs: HASH_MS } },
  );
  return parseDigests(result.stdout);
}

export function parseDigests(text: string): StoredFile[] {
  const files: StoredFile[] = [];
  for (const line of text.split('\n')) {
    const match = /^(\d+) ([0-9a-f]{64}) (.+)$/.exec(line);
    if (match) files.push({ bytes: Number(match[1]), sha256: match[2] as string, path: match[3] as string });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

export function parseManifest(text: string): CheckpointManifest | undefined {
  try {
    const value = JSON.parse(text) as Partial<CheckpointManifest>;
    if (value.schema !== MANIFEST_SCHEMA || typeof value.name !== 'string' || !Array.isArray(value.files))
      return undefined;
    return value as CheckpointManifest;
  } catch {
    return undefined;
  }
}

const RECORD_SEPARATOR = '\n\u001e\n';

/**
 * Every complete checkpoint of a container name in the store, in every series
 * and at the layout from before series, newest first. A legacy checkpoint's
 * series is its container's (the series its container would have started).
 */
export async function listStoredCheckpoints(
  host: Host,
  store: string,
  container: string,
): Promise<StoredCheckpoint[]> {
  const dir = containerDir(store, container);
  const result = await runChecked(
    host,
    `for f in ${shellQuote([dir])}/*/*/manifest.json ${shellQuote([dir])}/*/manifest.json; do [ -f "$f" ] || continue; printf '%s\\n' "$f"; cat "$f"; printf '\\n\\036\\n'; done`,
    { step: 'store', what: 'listing the checkpoints in the store', options: { timeoutMs: QUICK_MS } },
  );
  return parseStoredListing(result.stdout, dir);
}

/** Parses listStoredCheckpoints' output: for each manifest, its path on one line, then its text. */
export function parseStoredListing(text: string, dir: string): StoredCheckpoint[] {
  const found: StoredCheckpoint[] = [];
  for (const record of text.split(RECORD_SEPARATOR)) {
    const newline = record.indexOf('\n');
    if (newline < 0) continue;
    const path = record.slice(0, newline).trim();
    const manifest = parseManifest(record.slice(newline + 1));
    if (!manifest || !path.startsWith(`${dir}/`)) continue;
    const parts = path.slice(dir.length + 1).split('/');
    if (parts.length === 3) {
      found.push({
        manifest,
        series: parts[0] as string,
        dir: `${dir}/${parts[0]}/${parts[1]}`,
        legacy: false,
      });
    } else if (parts.length === 2) {
      found.push({
        manifest,
        series: seriesOfContainer(manifest.container.id),
        dir: `${dir}/${parts[0]}`,
        legacy: true,
      });
    }
  }
  return newestFirstStored(found);
}

/** The series a container starts: its short ID, as Docker prints it. */
export function seriesOfContainer(containerId: string): string {
  return containerId.replace(/^sha256:/, '').slice(0, 12);
}

export function newestFirstStored<T extends StoredCheckpoint>(stored: T[]): T[] {
  const order = newestFirst(stored.map((entry) => entry.manifest));
  return [...stored].sort((a, b) => order.indexOf(a.manifest) - order.indexOf(b.manifest));
}

export function newestFirst(manifests: CheckpointManifest[]): CheckpointManifest[] {
  return [...manifests].sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name),
  );
}

/** Which checkpoints retention removes: all but the newest `keep` (0 keeps all). */
export function retentionPlan(manifests: CheckpointManifest[], keep: number): CheckpointManifest[] {
  if (keep === 0) return [];
  return newestFirst(manifests).slice(keep);
}

/** Image files neither a complete checkpoint nor one being written refers to. */
export function unusedImages(imageFiles: string[], referred: readonly string[]): string[] {
  const used = new Set(referred);
  return imageFiles.filter((path) => !used.has(path));
}

/**
 * Every image the store's checkpoints refer to, complete (any layout) or being
 * written (their image.ref): what image collection must keep.
 */
export async function imagesReferred(host: Host, store: string): Promise<string[]> {
  const q = shellQuote([store]);
  const result = await runChecked(
    host,
    [
      `for f in ${q}/*/*/*/manifest.json ${q}/*/*/manifest.json; do [ -f "$f" ] || continue; printf 'M\\n'; cat "$f"; printf '\\n\\036\\n'; done`,
      `for f in ${q}/*/*/.*.partial/${IMAGE_REF_FILE} ${q}/*/.*.partial/${IMAGE_REF_FILE}; do [ -f "$f" ] || continue; printf 'R\\n'; cat "$f"; printf '\\n\\036\\n'; done`,
    ].join('\n'),
    { step: 'store', what: 'reading which images the store uses', options: { timeoutMs: QUICK_MS } },
  );
  return parseReferred(result.stdout);
}

export function parseReferred(text: string): string[] {
  const referred = new Set<string>();
  for (const record of text.split(RECORD_SEPARATOR)) {
    const trimmed = record.replace(/^\n+/, '');
    if (trimmed.startsWith('M\n')) {
      const manifest = parseManifest(trimmed.slice(2));
      if (manifest) referred.add(manifest.image.path);
    } else if (trimmed.startsWith('R\n')) {
      const ref = trimmed.slice(2).trim();
      if (ref !== '') referred.add(ref);
    }
  }
  return [...referred];
}

/** Shell that takes a directory lock (mkdir), waiting at most a minute (exit 75); one older than 10 minutes is stale. */
export function acquireDirLockScript(lockDir: string): string {
  return [
    `l=${shellQuote([lockDir])}; i=0`,
    'while ! mkdir "$l" 2>/dev/null; do',
    '  if [ -n "$(find "$l" -maxdepth 0 -mmin +10 2>/dev/null)" ]; then rmdir "$l" 2>/dev/null; fi',
    '  i=$((i + 1)); [ "$i" -le 600 ] || { echo "lock $l held for over a minute" >&2; exit 75; }',
    '  sleep 0.1',
    'done',
  ].join('\n');
}

/** Shell that runs `body` while holding a directory lock. */
export function underDirLock(lockDir: string, body: string): string {
  return `${acquireDirLockScript(lockDir)}\n( ${body} ); r=$?; rmdir "$l"; exit "$r"`;
}
