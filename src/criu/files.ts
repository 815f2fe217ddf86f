import { decodeMessage, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC } from './stats.js';

// What CRIU recorded of the regular files the processes have open, read from
// its images without crit (not installed on hosts as a rule):
//   files.img: file_entry { type = 1 (REG = 1), id = 2, reg = 3: reg_file_entry {
//     flags = 2, pos = 3, name = 6, mnt_id = 7 (sint32), size = 8 } }
//   mountpoints-<n>.img: mnt_entry { mnt_id = 2, mountpoint = 7 }
// CRIU compares `size` with the file at restore ("File ... has bad size"); it
// records none for descriptors opened write-only with O_APPEND (log files).

const REG = 1n;
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_APPEND = 0o2000;

export interface OpenRegularFile {
  /** As the process sees it, from its mount namespace's root. */
  path: string;
  mntId: number;
  flags: number;
  pos: number;
  /** The size CRIU will insist on at restore, when it recorded one. */
  size?: number;
}

/** The length-prefixed entries of a CRIU image after its magic numbers. */
function entries(image: Buffer): Buffer[] {
  let pos = 0;
  const first = image.readUInt32LE(pos);
  pos += first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC ? 8 : 4;
  const found: Buffer[] = [];
  // Bounded by the image's length: every pass moves on by at least 4 bytes.
  while (pos + 4 <= image.length) {
    const length = image.readUInt32LE(pos);
    const end = pos + 4 + length;
    if (end > image.length) throw new RangeError('truncated CRIU image entry');
    found.push(image.subarray(pos + 4, end));
    pos = end;
  }
  return found;
}

function num(value: bigint | Buffer | undefined): number | undefined {
  return typeof value === 'bigint' ? Number(value) : undefined;
}

function zigzag(value: number): number {
  return (value >>> 1) ^ -(value & 1);
}

/** The regular files of a files.img. */
export function parseRegularFiles(image: Buffer): OpenRegularFile[] {
  const files: OpenRegularFile[] = [];
  for (const entry of entries(image)) {
    const fields = decodeMessage(entry);
    if (fields.get(1) !== REG) continue;
    const reg = fields.get(3);
    if (!(reg instanceof Buffer)) continue;
    const r = decodeMessage(reg);
    const name = r.get(6);
    if (!(name instanceof Buffer)) continue;
    const size = num(r.get(8));
    files.push({
      path: name.toString('utf8'),
      mntId: zigzag(num(r.get(7)) ?? 1),
      flags: num(r.get(2)) ?? 0,
      pos: num(r.get(3)) ?? 0,
      ...(size === undefined ? {} : { size }),
    });
  }
  return files;
}

/** The mount IDs mounted on "/" in a mountpoints image: the container's root file system. */
export function rootMountIds(image: Buffer): number[] {
  const ids: number[] = [];
  for (const entry of entries(image)) {
    const fields = decodeMessage(entry);
    const mountpoint = fields.get(7);
    const id = num(fields.get(2));
    if (mountpoint instanceof Buffer && mountpoint.toString('utf8') === '/' && id !== undefined) ids.push(id);
  }
  return ids;
}

export function isAppendOnly(flags: number): boolean {
  return (flags & O_ACCMODE) === O_WRONLY && (flags & O_APPEND) !== 0;
}

/** Per path on the root file system: the size CRIU checks, and the furthest append offset. */
export interface LayerExpectation {
  path: string;
  criuSize?: number;
  appendOffset?: number;
}

export function layerExpectations(
  files: readonly OpenRegularFile[],
  rootIds: readonly number[],
): LayerExpectation[] {
  const byPath = new Map<string, LayerExpectation>();
  for (const file of files) {
    if (!rootIds.includes(file.mntId) || file.path.endsWith(' (deleted)')) continue;
    const found = byPath.get(file.path) ?? { path: file.path };
    if (file.size !== undefined) found.criuSize = file.size;
    if (isAppendOnly(file.flags)) found.appendOffset = Math.max(found.appendOffset ?? 0, file.pos);
    byPath.set(file.path, found);
  }
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * The regular files in `tar -tv --numeric-owner` listings of archives
 * extracted in order (a later archive's entry wins), by path from the root
 * ("./data/x" -> "/data/x").
 */
export function storedSizes(listings: readonly string[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const listing of listings) {
    for (const line of listing.split('\n')) {
      const match = /^-\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s(.+)$/.exec(line);
      if (!match) continue;
      const path = `/${(match[2] as string).replace(/^\.?\//, '')}`;
      sizes.set(path, Number(match[1]));
    }
  }
  return sizes;
}

export interface LayerMismatch {
  path: string;
  expected: string;
  stored: number;
}

/**
 * Files whose stored size disagrees with the freeze: CRIU's size must match
 * exactly (or the restore fails); an append-only file must hold at least what
 * the process wrote through its descriptor (less means writes were lost).
 */
export function layerMismatches(
  expected: readonly LayerExpectation[],
  stored: ReadonlyMap<string, number>,
): LayerMismatch[] {
  const wrong: LayerMismatch[] = [];
  for (const file of expected) {
    const bytes = stored.get(file.path);
    if (bytes === undefined) continue;
    if (file.criuSize !== undefined && bytes !== file.criuSize)
      wrong.push({ path: file.path, expected: `${file.criuSize} bytes (CRIU)`, stored: bytes });
    else if (file.appendOffset !== undefined && bytes < file.appendOffset)
      wrong.push({
        path: file.path,
        expected: `at least ${file.appendOffset} bytes (appended)`,
        stored: bytes,
      });
  }
  return wrong;
}
