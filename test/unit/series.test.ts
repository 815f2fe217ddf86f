import { describe, expect, it } from 'vitest';
import {
  describeSeries,
  groupSeries,
  parseSeriesRecord,
  resolveCheckpoint,
  SERIES_ID,
} from '../../src/state/series.js';
import { type CheckpointManifest, retentionPlan, type StoredCheckpoint } from '../../src/state/store.js';

function stored(series: string, name: string, createdAt: string, source: string): StoredCheckpoint {
  const manifest: CheckpointManifest = {
    schema: 1,
    name,
    container: { name: 'web', id: `${series}${'0'.repeat(52)}`, imageId: 'sha256:i', imageRef: 'web:1' },
    series,
    createdAt,
    versions: {},
    source,
    frozenMs: 1,
    phasesMs: {},
    files: [],
    image: { path: 'images/i.tar', bytes: 1, sha256: 'x' },
  };
  return { manifest, series, dir: `/s/web/${series}/${name}`, legacy: false };
}

const A = 'aaaaaaaaaaaa';
const B = 'bbbbbbbbbbbb';
const C = 'cccccccccccc';
// Two hosts, one "web" each, checkpoints interleaved into one store.
const twoHosts = [
  stored(A, 'web-1', '2026-01-01T00:00:00.000Z', 'root@h1:22'),
  stored(B, 'web-2', '2026-01-01T00:00:00.500Z', 'root@h2:22'),
  stored(A, 'web-3', '2026-01-01T01:00:00.000Z', 'root@h1:22'),
  stored(B, 'web-4', '2026-01-01T01:00:00.000Z', 'root@h2:22'),
];

describe('checkpoint series', () => {
  it('groups checkpoints by series, newest first', () => {
    const groups = groupSeries(twoHosts);
    expect(groups.map((g) => [g.id, g.checkpoints.map((c) => c.manifest.name)])).toEqual([
      [B, ['web-4', 'web-2']],
      [A, ['web-3', 'web-1']],
    ]);
  });

  it('refuses to guess between two live series of one name, and lists them', () => {
    const resolved = resolveCheckpoint(twoHosts, {});
    expect(resolved.kind).toBe('ambiguous');
    if (resolved.kind !== 'ambiguous') return;
    expect(resolved.candidates.map((c) => c.id).sort()).toEqual([A, B]);
    expect(describeSeries(resolved.candidates[0]!)).toMatch(
      /^series b{12}: container b{12}, newest web-4 taken 2026-01-01T01:00:00.000Z on root@h2:22 \(2 checkpoints\)$/,
    );
  });

  it('picks the newest of a series by its ID, and a named checkpoint wherever it is', () => {
    const bySeries = resolveCheckpoint(twoHosts, { series: A });
    expect(bySeries.kind === 'found' && bySeries.checkpoint.manifest.name).toBe('web-3');
    const byName = resolveCheckpoint(twoHosts, { name: 'web-2' });
    expect(byName.kind === 'found' && byName.checkpoint.series).toBe(B);
    expect(resolveCheckpoint(twoHosts, { series: A, name: 'web-2' }).kind).toBe('none');
    expect(resolveCheckpoint(twoHosts, { series: C }).kind).toBe('none');
  });

  it('a name held by two series is ambiguous too', () => {
    const clash = [...twoHosts, stored(A, 'same', '2026-01-02T00:00:00Z', 'root@h1:22')];
    clash.push(stored(B, 'same', '2026-01-02T00:00:00Z', 'root@h2:22'));
    expect(resolveCheckpoint(clash, { name: 'same' }).kind).toBe('ambiguous');
    const picked = resolveCheckpoint(clash, { name: 'same', series: B });
    expect(picked.kind === 'found' && picked.checkpoint.dir).toBe(`/s/web/${B}/same`);
  });

  it('sets aside a series replaced on its host by a later container of the name', () => {
    // docker compose recreated web on h1: series C began after A's last checkpoint there.
    const recreated = [
      stored(A, 'web-1', '2026-01-01T00:00:00Z', 'root@h1:22'),
      stored(C, 'web-5', '2026-01-02T00:00:00Z', 'root@h1:22'),
    ];
    const resolved = resolveCheckpoint(recreated, {});
    expect(resolved.kind).toBe('found');
    if (resolved.kind !== 'found') return;
    expect(resolved.checkpoint.manifest.name).toBe('web-5');
    expect(resolved.superseded.map((s) => s.id)).toEqual([A]);
  });

  it('a series that moved to another host is not superseded by a newer one on its old host', () => {
    const moved = [
      stored(A, 'web-1', '2026-01-01T00:00:00Z', 'root@h1:22'),
      stored(A, 'web-2', '2026-01-02T00:00:00Z', 'root@h2:22'),
      stored(C, 'web-3', '2026-01-03T00:00:00Z', 'root@h1:22'),
    ];
    expect(resolveCheckpoint(moved, {}).kind).toBe('ambiguous');
  });

  it('retention counts one series only', () => {
    const mine = twoHosts.filter((entry) => entry.series === A).map((entry) => entry.manifest);
    expect(retentionPlan(mine, 1).map((m) => m.name)).toEqual(['web-1']);
  });

  it('reads the per-container record and refuses what cannot be a directory name', () => {
    expect(
      parseSeriesRecord(JSON.stringify({ series: A, containerId: 'c1', via: 'migrate', at: 'x' })),
    ).toMatchObject({ series: A });
    expect(parseSeriesRecord(JSON.stringify({ series: '../x', containerId: 'c1' }))).toBeUndefined();
    expect(parseSeriesRecord('garbage')).toBeUndefined();
    expect(SERIES_ID.test('0123456789ab')).toBe(true);
    expect(SERIES_ID.test('a/b')).toBe(false);
  });
});
