import { describe, expect, it } from 'vitest';
import {
  buildListing,
  drillCell,
  listingLines,
  listingRows,
  unitLines,
  unitRows,
  withUnits,
} from '../../src/report/store-listing.js';
import type { CheckpointManifest } from '../../src/state/store.js';
import { parseStoreListing } from '../../src/state/store-listing.js';

const STORE = '/srv/store';

function manifest(name: string, createdAt: string, id: string, extra: Partial<CheckpointManifest> = {}) {
  const value: CheckpointManifest = {
    schema: 1,
    name,
    container: { name: 'web', id, imageId: `sha256:${'e'.repeat(64)}`, imageRef: 'probe/web:1' },
    series: id.slice(0, 12),
    createdAt,
    versions: { kernel: '6.18.0', criu: '4.2.1', docker: '26.1.5' },
    source: 'root@10.0.0.1:22',
    frozenMs: 412,
    phasesMs: {},
    files: [
      { path: 'criu/pages-1.img', bytes: 1000, sha256: 'a'.repeat(64) },
      { path: 'config.json', bytes: 24, sha256: 'b'.repeat(64) },
    ],
    image: { path: `images/${'e'.repeat(64)}.tar`, bytes: 5000, sha256: 'c'.repeat(64) },
    ...extra,
  };
  return value;
}

/** listStore's output: M records (a manifest's path relative to the store, then the manifest), D records after them. */
function record(kind: 'M' | 'D', path: string, body: unknown): string {
  return `${kind} ${path}\n${JSON.stringify(body, null, 2)}\n\u001e\n`;
}

const A = 'a1'.repeat(32);
const B = 'b2'.repeat(32);
const drill = {
  schema: 1,
  restorable: false,
  reason: 'CHECKSUM_MISMATCH: damaged',
  at: '2026-12-06T03:47:10.123Z',
  host: 'root@10.0.0.2:22',
  id: 'ab12cd34',
};
const OUTPUT = [
  record('M', `web/${A.slice(0, 12)}/web-1/manifest.json`, manifest('web-1', '2026-12-06T01:00:00.000Z', A)),
  record('M', `web/${A.slice(0, 12)}/web-2/manifest.json`, manifest('web-2', '2026-12-06T02:00:00.000Z', A)),
  record('D', `web/${A.slice(0, 12)}/web-2/drill.json`, drill),
  // At the layout from before series: <container>/<name>/manifest.json.
  record(
    'M',
    'web/old-1/manifest.json',
    manifest('old-1', '2026-12-05T01:00:00.000Z', B, { series: undefined }),
  ),
  record('M', `db/${B.slice(0, 12)}/db-1/manifest.json`, manifest('db-1', '2026-12-06T00:30:00.000Z', B)),
  'M web/bad/manifest.json\nnot json\n\u001e\n',
].join('');

describe('parseStoreListing', () => {
  const found = parseStoreListing(OUTPUT, STORE);

  it('finds every complete checkpoint, in series and at the old layout, newest first', () => {
    expect(
      found.map((entry) => [entry.stored, entry.series, entry.manifest.name, entry.dir, entry.legacy]),
    ).toEqual([
      ['web', A.slice(0, 12), 'web-2', `${STORE}/web/${A.slice(0, 12)}/web-2`, false],
      ['web', A.slice(0, 12), 'web-1', `${STORE}/web/${A.slice(0, 12)}/web-1`, false],
      ['db', B.slice(0, 12), 'db-1', `${STORE}/db/${B.slice(0, 12)}/db-1`, false],
      ['web', B.slice(0, 12), 'old-1', `${STORE}/web/old-1`, true],
    ]);
  });

  it('attaches each drill record to the checkpoint beside it', () => {
    expect(found.find((entry) => entry.manifest.name === 'web-2')?.drill).toEqual(drill);
    expect(found.filter((entry) => entry.drill).map((entry) => entry.manifest.name)).toEqual(['web-2']);
  });
});

describe('buildListing', () => {
  const listing = buildListing(parseStoreListing(OUTPUT, STORE), { host: '10.0.0.3', path: STORE });

  it('groups by container and series, containers by name, checkpoints newest first', () => {
    expect(listing.store).toEqual({ host: '10.0.0.3', path: STORE });
    expect(
      listing.series.map((series) => [series.container, series.id, series.checkpoints.map((c) => c.name)]),
    ).toEqual([
      ['db', B.slice(0, 12), ['db-1']],
      ['web', A.slice(0, 12), ['web-2', 'web-1']],
      ['web', B.slice(0, 12), ['old-1']],
    ]);
  });

  it('describes each checkpoint from its manifest and drill record', () => {
    const web2 = listing.series[1]?.checkpoints[0];
    expect(web2).toEqual({
      name: 'web-2',
      createdAt: '2026-12-06T02:00:00.000Z',
      source: 'root@10.0.0.1:22',
      containerId: A,
      bytes: 1024,
      imageBytes: 5000,
      frozenMs: 412,
      image: { id: `sha256:${'e'.repeat(64)}`, ref: 'probe/web:1' },
      versions: { criu: '4.2.1', kernel: '6.18.0', docker: '26.1.5' },
      path: `${STORE}/web/${A.slice(0, 12)}/web-2`,
      legacy: false,
      drill: { restorable: false, at: drill.at, reason: drill.reason, host: drill.host },
    });
    expect(listing.series[1]?.checkpoints[1]?.drill).toBeNull();
  });

  it('is plain JSON: what the output carries parses back the same', () => {
    expect(JSON.parse(JSON.stringify(listing))).toEqual(listing);
  });
});

describe('listingRows', () => {
  const listing = buildListing(parseStoreListing(OUTPUT, STORE), { host: '10.0.0.3', path: STORE });
  const rows = listingRows(listing);

  it('has a header row, then one row per checkpoint in listing order', () => {
    expect(rows[0]?.map((cell) => (typeof cell === 'string' ? cell : cell.data))).toEqual([
      'Container',
      'Series',
      'Checkpoint',
      'Taken (UTC)',
      'Source host',
      'Container ID',
      'Size',
      'Frozen',
      'Image',
      'CRIU',
      'Kernel',
      'Docker',
      'Drill',
    ]);
    expect(rows.slice(1).map((row) => row[2])).toEqual(['db-1', 'web-2', 'web-1', 'old-1']);
    expect(rows[2]).toEqual([
      'web',
      A.slice(0, 12),
      'web-2',
      '2026-12-06 02:00:00Z',
      'root@10.0.0.1:22',
      A.slice(0, 12),
      '1.0 KiB',
      '412 ms',
      'probe/web:1',
      '4.2.1',
      '6.18.0',
      '26.1.5',
      '❌ failed 2026-12-06 03:47:10Z: CHECKSUM_MISMATCH: damaged',
    ]);
  });

  it('escapes what it shows', () => {
    const odd = buildListing(
      parseStoreListing(
        record(
          'M',
          `x/${A.slice(0, 12)}/c/manifest.json`,
          manifest('c', '2026-12-06T00:00:00.000Z', A, {
            container: { name: 'x', id: A, imageId: 'sha256:1', imageRef: '<img>' },
          }),
        ),
        STORE,
      ),
      { host: 'h', path: STORE },
    );
    expect(listingRows(odd)[1]?.[8]).toBe('&#60;img&#62;');
  });

  it('says whether a drill passed, failed or never ran', () => {
    expect(drillCell(null)).toBe('never drilled');
    expect(drillCell({ restorable: true, at: '2026-12-06T03:00:00.000Z', reason: null, host: 'h' })).toBe(
      '✅ passed 2026-12-06 03:00:00Z',
    );
    expect(listingLines(listing)[1]).toBe(
      `web series ${A.slice(0, 12)}: 2 checkpoint(s), newest web-2 (2026-12-06T02:00:00.000Z, ❌ failed 2026-12-06 03:47:10Z: CHECKSUM_MISMATCH: damaged)`,
    );
  });
});

describe('withUnits', () => {
  const found = parseStoreListing(OUTPUT, STORE);
  const listing = buildListing(found, { host: 'root@10.0.0.9:22', path: STORE });
  const unit = (name: string, webCheckpoint: string) => ({
    schema: 1 as const,
    kind: 'compose' as const,
    project: 'shop',
    name,
    createdAt: '2026-12-06T02:00:00.000Z',
    source: 'root@10.0.0.1:22',
    order: ['db', 'web'],
    waitsFor: { web: ['db'] },
    members: [
      { container: 'db', service: 'db', id: B, checkpoint: 'db-1', series: B.slice(0, 12), endpoints: [] },
      {
        container: 'web',
        service: 'web',
        id: A,
        checkpoint: webCheckpoint,
        series: A.slice(0, 12),
        endpoints: [],
      },
    ],
    networks: [
      {
        name: 'shop_default',
        driver: 'bridge',
        internal: false,
        attachable: false,
        enableIPv6: false,
        ipam: [],
        options: {},
        labels: {},
      },
    ],
    frozenMs: 700,
  });

  it('shows a unit whose members are all listed as complete, and marks its member checkpoints', () => {
    const shown = withUnits(listing, [unit('u1', 'web-2')], true);
    expect(shown.units).toEqual([
      {
        unit: 'compose:shop',
        name: 'u1',
        createdAt: '2026-12-06T02:00:00.000Z',
        source: 'root@10.0.0.1:22',
        frozenMs: 700,
        members: [
          { container: 'db', service: 'db', checkpoint: 'db-1', series: B.slice(0, 12), listed: true },
          { container: 'web', service: 'web', checkpoint: 'web-2', series: A.slice(0, 12), listed: true },
        ],
        networks: ['shop_default'],
        complete: true,
      },
    ]);
    const web2 = shown.series.flatMap((s) => s.checkpoints).find((c) => c.name === 'web-2');
    expect(web2?.unit).toBe('compose:shop/u1');
    expect(unitLines(shown.units ?? [])).toEqual([
      `unit compose:shop checkpoint u1 (2026-12-06T02:00:00.000Z, from root@10.0.0.1:22): db, web`,
    ]);
    expect(unitRows(shown.units ?? [])).toHaveLength(2);
  });

  it('says which member checkpoint a unit misses, and lists no units when the store has none', () => {
    const shown = withUnits(listing, [unit('u2', 'web-gone')], true);
    expect(shown.units?.[0]?.complete).toBe(false);
    expect(unitLines(shown.units ?? [])[0]).toMatch(/incomplete, missing web-gone$/);
    expect(withUnits(listing, [], true)).toEqual(listing);
    // Listing one container: a unit none of whose members is listed stays out.
    const dbOnly = { ...listing, series: listing.series.filter((s) => s.container === 'web') };
    expect(withUnits(dbOnly, [unit('u2', 'web-gone')], false).units).toBeUndefined();
  });
});
