import { describe, expect, it } from 'vitest';
import { directDir } from '../../src/phases/direct-route.js';
import { isRestoreConfigPath, restoreConfigPath, workDir } from '../../src/state/host-records.js';
import {
  type CheckpointManifest,
  checkpointDir,
  imagePath,
  legacyCheckpointDir,
  newestFirst,
  parseDigests,
  parseManifest,
  parseReferred,
  parseStoredListing,
  partialDir,
  retentionPlan,
  seriesOfContainer,
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
    expect(checkpointDir('/s', 'web', '0123456789ab', 'n1')).toBe('/s/web/0123456789ab/n1');
    expect(partialDir('/s', 'web', '0123456789ab', 'n1')).toBe('/s/web/0123456789ab/.n1.partial');
    expect(legacyCheckpointDir('/s', 'web', 'n1')).toBe('/s/web/n1');
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

  it('keeps images a complete or an in-progress checkpoint refers to', () => {
    const listing = [
      `M\n${JSON.stringify(manifest('a', 'x', 'images/one.tar'))}`,
      'R\nimages/two.tar',
      `M\n${JSON.stringify(manifest('b', 'y', 'images/one.tar'))}`,
      'M\nnot a manifest',
      'R\n',
    ].join('\n\u001e\n');
    const referred = parseReferred(`${listing}\n\u001e\n`);
    expect(referred.sort()).toEqual(['images/one.tar', 'images/two.tar']);
    expect(unusedImages(['images/one.tar', 'images/two.tar', 'images/three.tar'], referred)).toEqual([
      'images/three.tar',
    ]);
  });

  it("lists checkpoints by series, and those of the layout before series in their container's series", () => {
    const a = { ...manifest('n1', '2026-01-01T00:00:00Z'), series: 'aaaaaaaaaaaa' };
    const b = { ...manifest('n2', '2026-01-02T00:00:00Z'), series: 'bbbbbbbbbbbb' };
    const old = manifest('n0', '2025-12-31T00:00:00Z');
    const text = [
      `/s/web/aaaaaaaaaaaa/n1/manifest.json\n${JSON.stringify(a)}`,
      `/s/web/bbbbbbbbbbbb/n2/manifest.json\n${JSON.stringify(b)}`,
      `/s/web/n0/manifest.json\n${JSON.stringify(old)}`,
      `/s/other/x/manifest.json\n${JSON.stringify(old)}`,
    ].join('\n\u001e\n');
    const found = parseStoredListing(`${text}\n\u001e\n`, '/s/web');
    expect(found.map((entry) => [entry.manifest.name, entry.series, entry.dir, entry.legacy])).toEqual([
      ['n2', 'bbbbbbbbbbbb', '/s/web/bbbbbbbbbbbb/n2', false],
      ['n1', 'aaaaaaaaaaaa', '/s/web/aaaaaaaaaaaa/n1', false],
      ['n0', 'cccccccccccc', '/s/web/n0', true],
    ]);
    expect(seriesOfContainer(`sha256:${'f'.repeat(64)}`)).toBe('ffffffffffff');
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

describe("one run's files on a host", () => {
  it('differ for two containers under one checkpoint name, and for two runs of one name', () => {
    const web = { container: 'web', checkpointName: 'cutover' };
    const db = { container: 'db', checkpointName: 'cutover' };
    expect(workDir(web)).toBe('/var/lib/criu-migrate/work/web.cutover');
    expect(workDir(web)).not.toBe(workDir(db));
    expect(restoreConfigPath(web)).not.toBe(restoreConfigPath(db));
    expect(isRestoreConfigPath(restoreConfigPath(web))).toBe(true);
    expect(directDir('cutover', 'a1b2')).not.toBe(directDir('cutover', 'c3d4'));
    // A drill locks its own key, and its files follow it: a restore of the same checkpoint keeps its own.
    expect(workDir({ ...web, workKey: 'web-drill' })).toBe('/var/lib/criu-migrate/work/web-drill.cutover');
  });
});
