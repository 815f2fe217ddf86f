import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  isAppendOnly,
  layerExpectations,
  layerMismatches,
  parseRegularFiles,
  rootMountIds,
  storedSizes,
} from '../../src/criu/files.js';
import { restoreRemedy } from '../../src/phases/restore.js';

// A real dump from the test bed (CRIU 4.2.1): busybox sh holding /data/log open with
// `exec 3>>` (write-only, append) and /data/db with `exec 4<>` (read-write), both in
// its writable layer; stat while frozen said log 743 bytes, db 649 bytes.
const fixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`../fixtures/criu/${name}.b64`, import.meta.url), 'utf8').trim(),
    'base64',
  );

describe("CRIU's record of open files", () => {
  const files = parseRegularFiles(fixture('files.img'));
  const roots = rootMountIds(fixture('mountpoints.img'));

  it('reads the regular files, their flags, offsets and the sizes CRIU checks', () => {
    const log = files.find((file) => file.path === '/data/log');
    const db = files.find((file) => file.path === '/data/db');
    expect(log && isAppendOnly(log.flags)).toBe(true);
    expect(log?.size).toBeUndefined();
    expect(log?.pos).toBe(743);
    expect(db && isAppendOnly(db.flags)).toBe(false);
    expect(db?.size).toBe(649);
    expect(files.some((file) => file.path === '/bin/busybox')).toBe(true);
  });

  it('finds the root file system among the mounts', () => {
    expect(roots).toHaveLength(1);
    expect(files.find((file) => file.path === '/data/db')?.mntId).toBe(roots[0]);
  });

  it('expects the layer to hold the open files as they were at the freeze', () => {
    const expected = layerExpectations(files, roots);
    expect(expected.filter((file) => file.path.startsWith('/data/'))).toEqual([
      { path: '/data/db', criuSize: 649 },
      { path: '/data/log', appendOffset: 743 },
    ]);
    const listing = [
      'drwxr-xr-x 0/0               0 2026-12-06 20:00 ./data/\n-rw-r--r-- 0/0             100 2026-12-06 20:00 ./data/db\n-rw-r--r-- 0/0             100 2026-12-06 20:00 ./data/log\n',
      '-rw-r--r-- 0/0             649 2026-12-06 20:00 ./data/db\n-rw-r--r-- 0/0             743 2026-12-06 20:00 ./data/log\n',
    ];
    // The frozen pass wins over the bulk; /bin/busybox is not in the layer, so not compared.
    expect(layerMismatches(expected, storedSizes(listing))).toEqual([]);
    // The layer copied after the process wrote on: the db's size is what CRIU would refuse.
    const late = [
      '-rw-r--r-- 0/0             701 2026-12-06 20:00 ./data/db\n-rw-r--r-- 0/0             800 2026-12-06 20:00 ./data/log\n',
    ];
    expect(layerMismatches(expected, storedSizes(late))).toEqual([
      { path: '/data/db', expected: '649 bytes (CRIU)', stored: 701 },
    ]);
    // Shorter than what was appended: writes lost.
    const short = [
      '-rw-r--r-- 0/0             649 2026-12-06 20:00 ./data/db\n-rw-r--r-- 0/0             700 2026-12-06 20:00 ./data/log\n',
    ];
    expect(layerMismatches(expected, storedSizes(short))).toEqual([
      { path: '/data/log', expected: 'at least 743 bytes (appended)', stored: 700 },
    ]);
  });

  it('reads names with spaces from a tar listing', () => {
    expect(storedSizes(['-rw-r--r-- 0/0 5 2026-12-06 20:00 ./a b/c d\n']).get('/a b/c d')).toBe(5);
  });
});

describe('restore remedies', () => {
  it('a bad size points at the writable layer, anything else at criu check', () => {
    expect(
      restoreRemedy('(00.12) 1: Error (criu/files-reg.c:2175): File data/db has bad size 2484 (expect 2420)'),
    ).toMatch(
      /^the file data\/db in the container's writable layer has 2484 bytes, the process had it at 2420/,
    );
    expect(restoreRemedy('Error (criu/cr-restore.c:2331): Restoring FAILED.')).toMatch(/criu check/);
  });
});
