import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../scripts/bench/options.js';
import { type UnitResults, unitMarkdown } from '../../scripts/bench/render/unit-markdown.js';
import type { MemoryCheck } from '../../scripts/bench/report.js';
import {
  combineFreezes,
  type Freeze,
  freezeOf,
  summariseUnit,
  type UnitRun,
} from '../../scripts/bench/unit-stats.js';
import { errorLine, unitComposeFile } from '../../scripts/bench/ways/unit.js';
import type { CounterLine } from '../../test/e2e/testbed.js';

const token = '0b4e3f5a-1111-2222-3333-444455556666';
const lines = (pairs: [number, number][]): CounterLine[] => pairs.map(([n, ms]) => ({ n, ms, token }));
const intact: MemoryCheck = { status: 'intact', before: 'x', after: 'x' };

function freeze(container: string, fromMs: number, toMs: number, reportedMs?: number): Freeze {
  const f: Freeze = { container, fromMs, toMs, ms: toMs - fromMs, continued: true, memory: intact };
  if (reportedMs !== undefined) f.reportedMs = reportedMs;
  return f;
}

describe('freezeOf: one container frozen, from its own ticks', () => {
  it('the gap between the last source tick and the first target tick, continued', () => {
    const source = lines([
      [1, 1000],
      [2, 1010],
      [3, 1020],
    ]);
    const target = lines([
      [3, 1020],
      [4, 1850],
      [5, 1860],
    ]);
    expect(freezeOf(source, target, { fromMs: 1005, toMs: 2000 })).toEqual({
      fromMs: 1020,
      toMs: 1850,
      ms: 830,
      continued: true,
    });
  });

  it('a stall before the move is not the freeze', () => {
    const source = lines([
      [1, 0],
      [2, 5000],
      [3, 5010],
    ]);
    const target = lines([[4, 5500]]);
    expect(freezeOf(source, target, { fromMs: 5005, toMs: 6000 })?.ms).toBe(490);
  });

  it('no lines in the window: undefined, never a zero freeze', () => {
    expect(freezeOf(lines([[1, 0]]), [], { fromMs: 10, toMs: 20 })).toBeUndefined();
  });
});

describe('combineFreezes', () => {
  it('frozen together: total is the sum, longest the larger, span the union', () => {
    expect(combineFreezes([freeze('a', 100, 900, 780), freeze('b', 120, 950, 800)])).toEqual({
      totalFrozenMs: 1630,
      longestFreezeMs: 830,
      spanMs: 850,
      reportedTotalMs: 1580,
      reportedLongestMs: 800,
    });
  });

  it('one after the other: the span covers both', () => {
    expect(combineFreezes([freeze('a', 0, 500), freeze('b', 3000, 3400)])).toEqual({
      totalFrozenMs: 900,
      longestFreezeMs: 500,
      spanMs: 3400,
    });
  });

  it('the action figures only when every member has one', () => {
    expect(combineFreezes([freeze('a', 0, 500, 450), freeze('b', 600, 800)]).reportedTotalMs).toBeUndefined();
    expect(combineFreezes([])).toEqual({});
  });
});

const runs: UnitRun[] = [
  {
    way: 'unit',
    rep: 1,
    sizeMiB: 64,
    freezes: [freeze('p-a-1', 0, 1000, 950), freeze('p-b-1', 10, 1010, 960)],
    totalFrozenMs: 2000,
    longestFreezeMs: 1000,
    spanMs: 1010,
    reportedTotalMs: 1910,
    reportedLongestMs: 960,
    actionMs: 9000,
  },
  {
    way: 'unit',
    rep: 2,
    sizeMiB: 64,
    freezes: [
      freeze('p-a-1', 0, 1200),
      { ...freeze('p-b-1', 0, 1100), memory: { status: 'not checked', why: 'x' } },
    ],
    totalFrozenMs: 2300,
    longestFreezeMs: 1200,
    spanMs: 1200,
    actionMs: 9400,
  },
  {
    way: 'one-at-a-time',
    rep: 1,
    sizeMiB: 64,
    freezes: [freeze('p-a-1', 0, 800), freeze('p-b-1', 5000, 5900)],
    totalFrozenMs: 1700,
    longestFreezeMs: 900,
    spanMs: 5900,
    actionMs: 15000,
  },
  { way: 'one-at-a-time', rep: 2, sizeMiB: 64, error: 'action ended\nrolled-back' },
];

describe('summariseUnit', () => {
  const summary = summariseUnit(runs);

  it('medians over the completed runs, failures counted', () => {
    expect(summary.unit?.totalFrozenMs).toEqual({ median: 2150, min: 2000, max: 2300, n: 2 });
    expect(summary.unit?.longestFreezeMs?.median).toBe(1100);
    expect(summary['one-at-a-time']).toMatchObject({
      runs: 2,
      failed: 1,
      totalFrozenMs: { median: 1700, n: 1 },
    });
  });

  it('memory by content per member move; a missing check is not counted as intact', () => {
    expect(summary.unit?.memory).toEqual({ intact: 3, differs: 0, notChecked: 1 });
    expect(summary['one-at-a-time']?.memory).toEqual({ intact: 2, differs: 0, notChecked: 0 });
  });

  it('ratios one at a time / unit on the medians', () => {
    expect(summary.totalFrozenRatio).toBeCloseTo(1700 / 2150);
    expect(summary.longestFreezeRatio).toBeCloseTo(900 / 1100);
  });

  it('a way that never completed has no spread and did not continue', () => {
    const none = summariseUnit([{ way: 'unit', rep: 1, sizeMiB: 64, error: 'x' }]);
    expect(none.unit).toMatchObject({ runs: 1, failed: 1, continued: false });
    expect(none.unit?.totalFrozenMs).toBeUndefined();
    expect(none.totalFrozenRatio).toBeUndefined();
  });
});

describe('unit.md', () => {
  const results: UnitResults = {
    schema: 1,
    startedAt: '2026-12-07T02:46:00Z',
    finishedAt: '2026-12-07T02:56:00Z',
    machine: { cpus: 2, loadStart: '5.00', loadEnd: '6.00' },
    versions: {},
    dist: { sha256: 'abc' },
    settings: {
      sizeMiB: 64,
      reps: 2,
      tick: '0.01',
      pattern: 'random',
      project: 'p',
      services: ['p-a-1', 'p-b-1'],
    },
    summary: summariseUnit(runs),
    runs,
    notes: ['a note'],
  };
  const md = unitMarkdown(results);

  it('one summary row per way with medians, ranges, memory and the ratio line', () => {
    expect(md).toContain(
      '| one unit (`unit: compose:<project>`, one run) | 2.15 s (2.00 s–2.30 s) | 1.10 s (1.00 s–1.20 s) | 1.10 s (1.01 s–1.20 s) | 1.91 s / 0.96 s | 9.20 s (9.00 s–9.40 s) | 3 intact, 1 not checked | yes |',
    );
    expect(md).toContain(
      '| one at a time (two plain `container:` runs) (1 of 2 runs failed) | 1.70 s | 0.90 s | 5.90 s |',
    );
    expect(md).toContain('One at a time / one unit: total frozen 0.79x, longest single freeze 0.82x.');
  });

  it('every run listed, a failed one with its error', () => {
    expect(md).toContain('| one-at-a-time | 2 | failed: action ended rolled-back |');
    expect(md).toContain('p-a-1 1.00 s (action 0.95 s, memory intact)');
    expect(md).toContain('- a note');
  });
});

describe('errorLine', () => {
  it("the action's ::error:: line with its newlines spelled out, else the log's end", () => {
    expect(errorLine('a\n::error::CHECKPOINT_FAILED: docker pause failed%0AWhat to do: x\nb')).toBe(
      '::error::CHECKPOINT_FAILED: docker pause failed / What to do: x',
    );
    expect(errorLine('just a log')).toBe('just a log');
  });
});

describe('the unit section is off by default', () => {
  it('--unit turns it on, --unit-mib sizes it', () => {
    expect(parseOptions([], {}).unit).toBe(false);
    expect(parseOptions(['--unit', '--unit-mib', '32'], {})).toMatchObject({ unit: true, unitMiB: 32 });
    expect(parseOptions([], {}).unitMiB).toBe(64);
    expect(() => parseOptions(['--unit-mib', '0'], {})).toThrow('--unit-mib must be a positive integer');
  });

  it('the compose file: two services of the bench image with incompressible memory', () => {
    const file = unitComposeFile(64, 'random');
    expect(file.match(/image: bench\/counter:1/g)).toHaveLength(2);
    expect(file).toContain('  a:\n');
    expect(file).toContain('  b:\n');
    expect(file).toContain('MB: "64"');
    expect(file).toContain('PATTERN: "random"');
  });
});
