import { describe, expect, it } from 'vitest';
import {
  type CheckpointManifest,
  checkpointDir,
  imagePath,
  newestFirst,
  parseDigests,
  parseManifest,
  partialDir,
  retentionPlan,
  unusedImages,
} from '../../src/state/store.js';

function manifest(name: string, createdAt: string, image = 'images/aaa.tar'): CheckpointManifest {
  return {
    schema: 1,
    name,
    container: { name: 'web', id: 'c'.repeat(64), imageId: `sha256:${'a'.repeat(64)}`, imageRef: 'web:1' },
    createdAt,
    versions: {},
    source: 'root@h1:22',
    frozenMs: 10,
    phasesMs: {},
    files: [],
    image: { path: image, bytes: 1, sha256: 'b'.repeat(64) },
  };
}

describe('checkpoint store', () => {
  it('names complete and partial checkpoints apart, and images by ID', () => {
    expect(checkpointDir('/s', 'web', 'n1')).toBe('/s/web/n1');
    expect(partialDir('/s', 'web', 'n1')).toBe('/s/web/.n1.partial');
    expect(imagePath(`sha256:${'f'.repeat(64)}`)).toBe(`images/${'f'.repeat(64)}.tar`);
  });

  it.each([
    [0, []],
    [1, ['b', 'a']],
    [2, ['a']],
    [3, []],
  ])('retention %i removes %o', (keep, removed) => {
    const all = [
      manifest('a', '2026-01-01T00:00:00Z'),
      manifest('c', '2026-01-03T00:00:00Z'),
      manifest('b', '2026-01-02T00:00:00Z'),
    ];
    expect(retentionPlan(all, keep).map((m) => m.name)).toEqual(removed);
  });

  it('orders newest first, by time then name', () => {
    const same = '2026-01-01T00:00:00Z';
    expect(
      newestFirst([manifest('a', same), manifest('b', same), manifest('c', '2027-01-01T00:00:00Z')]).map(
        (m) => m.name,
      ),
    ).toEqual(['c', 'b', 'a']);
  });

  it('keeps images any kept checkpoint of any container uses', () => {
    const kept = [manifest('a', 'x', 'images/one.tar'), manifest('b', 'y', 'images/two.tar')];
    expect(unusedImages(['images/one.tar', 'images/two.tar', 'images/three.tar'], kept)).toEqual([
      'images/three.tar',
    ]);
  });

  it('parses size, sha256 and path lines, paths with spaces too', () => {
    const sha = 'd'.repeat(64);
    expect(parseDigests(`12 ${sha} criu/pages-1.img\n3 ${sha} odd name.txt\nnoise\n`)).toEqual([
      { bytes: 12, sha256: sha, path: 'criu/pages-1.img' },
      { bytes: 3, sha256: sha, path: 'odd name.txt' },
    ]);
  });

  it.each([
    ['not json', undefined],
    ['{"schema":2,"name":"x","files":[]}', undefined],
    [JSON.stringify(manifest('x', 't')), 'x'],
  ])('parseManifest(%s)', (text, name) => {
    expect(parseManifest(text)?.name).toBe(name);
  });
});
