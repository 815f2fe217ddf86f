import { describe, expect, it } from 'vitest';
import {
  chooseUnitRecord,
  memberCheckpointName,
  parseUnitRecord,
  type UnitRecord,
  unitRecordPath,
  unitRetentionPlan,
} from '../../src/policy/unit-record.js';

function record(name: string, createdAt: string, source = 'root@h1:22'): UnitRecord {
  return {
    schema: 1,
    kind: 'compose',
    project: 'shop',
    name,
    createdAt,
    source,
    order: ['shop-redis-1', 'shop-web-1'],
    waitsFor: { 'shop-web-1': ['shop-redis-1'], 'shop-redis-1': [] },
    members: [
      {
        container: 'shop-redis-1',
        service: 'redis',
        id: 'a'.repeat(64),
        checkpoint: `${name}-shop-redis-1`,
        series: 'aaaaaaaaaaaa',
        endpoints: [],
      },
      {
        container: 'shop-web-1',
        service: 'web',
        id: 'b'.repeat(64),
        checkpoint: `${name}-shop-web-1`,
        series: 'bbbbbbbbbbbb',
        endpoints: [],
      },
    ],
    networks: [],
  };
}

describe('unit records', () => {
  it('live in a hidden directory of the store, one file per unit checkpoint', () => {
    expect(unitRecordPath('/srv/cp', 'shop', 'n1')).toBe('/srv/cp/.units/shop/n1.json');
    expect(memberCheckpointName('n1', 'shop-web-1')).toBe('n1-shop-web-1');
    expect(memberCheckpointName('x'.repeat(120), 'shop-web-1')).toHaveLength(128);
  });

  it('parse back as written, and refuse names that would become unsafe paths', () => {
    const written = record('n1', '2026-12-07T05:00:00Z');
    expect(parseUnitRecord(JSON.stringify(written))).toEqual(written);
    expect(parseUnitRecord('not json')).toBeUndefined();
    expect(parseUnitRecord(JSON.stringify({ ...written, name: '../etc' }))).toBeUndefined();
    const badMember = {
      ...written,
      members: [{ ...written.members[0], series: '../../x' }, written.members[1]],
    };
    expect(parseUnitRecord(JSON.stringify(badMember))).toBeUndefined();
    // An order that does not name exactly the members is not a unit.
    expect(parseUnitRecord(JSON.stringify({ ...written, order: ['shop-web-1'] }))).toBeUndefined();
    expect(parseUnitRecord(JSON.stringify({ ...written, members: [] }))).toBeUndefined();
  });

  it('restore takes the named unit checkpoint, else the newest', () => {
    const records = [
      record('n1', '2026-12-07T05:00:00Z'),
      record('n3', '2026-12-07T07:00:00Z'),
      record('n2', '2026-12-07T06:00:00Z'),
    ];
    expect(chooseUnitRecord(records, {})?.name).toBe('n3');
    expect(chooseUnitRecord(records, { name: 'n1' })?.name).toBe('n1');
    expect(chooseUnitRecord(records, { name: 'n9' })).toBeUndefined();
    expect(chooseUnitRecord([], {})).toBeUndefined();
  });

  it('retention keeps the newest of the same source, and 0 keeps all', () => {
    const records = [
      record('n1', '2026-12-07T05:00:00Z'),
      record('n2', '2026-12-07T06:00:00Z'),
      record('n3', '2026-12-07T07:00:00Z'),
      record('other', '2026-12-07T04:00:00Z', 'root@h2:22'),
    ];
    expect(unitRetentionPlan(records, 'root@h1:22', 2).map((r) => r.name)).toEqual(['n1']);
    expect(unitRetentionPlan(records, 'root@h1:22', 0)).toEqual([]);
    expect(unitRetentionPlan(records, 'root@h2:22', 1)).toEqual([]);
  });
});
