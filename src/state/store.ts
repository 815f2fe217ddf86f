import type { Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import type { VolumeInfo } from '../policy/volumes.js';
import type { VolumePassFacts } from '../report/metadata.js';

/**
 * The checkpoint store, a directory on any host with sh, tar and sha256sum:
 *   <store>/<container>/<name>/            one complete checkpoint (only complete ones have this name)
 *       manifest.json                      what is in it, with the sha256 and size of every file
 *       criu/                              CRIU's images
 *       cpu/cpuinfo.img                    the source's CPU, for `criu cpuinfo check` on a target
 *       layer.tar                          the container's writable layer (GNU tar, xattrs, whiteouts)
 *       config.json                        docker inspect of the container and its image's config
 *       volumes/<volume>/bulk.tar          a named volume before the freeze (GNU tar, --listed-incremental)
 *       volumes/<volume>/frozen.tar        what changed in it up to the freeze (or all of it)
 *   <store>/<container>/.<name>.partial/   being written; never listed, removed when a run fails
 *   <store>/images/<image id>.tar          docker save of an image, once per image ID
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
  frozenMs: number;
  phasesMs: Record<string, number>;
  files: StoredFile[];
  image: StoredFile;
  /** Named volumes kept with the checkpoint (absent in checkpoints taken before volumes moved). */
  volumes?: StoredVolume[];
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
}

export function containerDir(store: string, container: string): string {
  return `${store}/${container}`;
}

export function checkpointDir(store: string, container: string, name: string): string {
  return `${containerDir(store, container)}/${name}`;
}

export function partialDir(store: string, container: string, name: string): string {
  return `${containerDir(store, container)}/.${name}.partial`;
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

/** The complete checkpoints of a container in the store, newest first. */
export async function listCheckpoints(
  host: Host,
  store: string,
  container: string,
): Promise<CheckpointManifest[]> {
  const dir = containerDir(store, container);
  const result = await runChecked(
    host,
    `for f in ${shellQuote([dir])}/*/manifest.json; do [ -f "$f" ] || continue; cat "$f"; printf '\\n\\036\\n'; done`,
    { step: 'store', what: 'listing the checkpoints in the store', options: { timeoutMs: QUICK_MS } },
  );
  return newestFirst(
    result.stdout
      .split('\n\u001e\n')
      .map((text) => (text.trim() === '' ? undefined : parseManifest(text)))
      .filter((manifest): manifest is CheckpointManifest => manifest !== undefined),
  );
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

/** Image files no kept checkpoint of any container refers to. */
export function unusedImages(imageFiles: string[], kept: CheckpointManifest[]): string[] {
  const used = new Set(kept.map((manifest) => manifest.image.path));
  return imageFiles.filter((path) => !used.has(path));
}

/** Every manifest in the store, of every container (for the image garbage collection). */
export async function allManifests(host: Host, store: string): Promise<CheckpointManifest[]> {
  const result = await runChecked(
    host,
    `for f in ${shellQuote([store])}/*/*/manifest.json; do [ -f "$f" ] || continue; cat "$f"; printf '\\n\\036\\n'; done`,
    { step: 'store', what: 'reading the store', options: { timeoutMs: QUICK_MS } },
  );
  return result.stdout
    .split('\n\u001e\n')
    .map((text) => (text.trim() === '' ? undefined : parseManifest(text)))
    .filter((manifest): manifest is CheckpointManifest => manifest !== undefined);
}
