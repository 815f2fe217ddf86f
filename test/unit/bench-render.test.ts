import { describe, expect, it } from 'vitest';
import { modesLine, ratioLine } from '../../scripts/bench/render/final-line.js';
import { fmtBytes, metText, range } from '../../scripts/bench/render/format.js';
import { floorTable, markdown, resultsTable, targetsTable } from '../../scripts/bench/render/markdown.js';
import { chart, logTicks } from '../../scripts/bench/render/svg.js';
import type { MigrationRun, Report, Summary } from '../../scripts/bench/report.js';
import { evaluateTargets, summarise } from '../../scripts/bench/stats.js';

const sp = (median: number, min = median, max = median, n = 1) => ({ median, min, max, n });

function summaryWith(
  ways: Partial<Record<'seed' | 'action' | 'podman', number>>,
  modes?: { freeze: number; restore: number },
): Summary {
  const entry: Summary['bySize'][string] = { ways: {} };
  for (const [way, ms] of Object.entries(ways))
    entry.ways[way as 'seed'] = { downtimeMs: sp(ms), continued: true, failed: 0 };
  if (modes)
    entry.modes = {
      freezeRatio: sp(modes.freeze),
      restoreRatio: sp(modes.restore),
      continued: true,
      failed: 0,
    };
  return { bySize: { '256': entry }, transport: {}, redis: {} };
}

describe('the last lines', () => {
  it.each([
    {
      ways: { seed: 10_000, action: 2_000, podman: 5_000 },
      want: 'downtime ratio seed/action at 256 MiB: 5.00; podman/action: 2.50',
    },
    {
      ways: { seed: 3_000, action: 2_000 },
      want: 'downtime ratio seed/action at 256 MiB: 1.50; podman/action: n/a',
    },
    {
      ways: { seed: 3_000, podman: 2_000 },
      want: 'downtime ratio seed/action at 256 MiB: n/a; podman/action: n/a',
    },
    { ways: {}, want: 'downtime ratio seed/action at 256 MiB: n/a; podman/action: n/a' },
  ])('ratio line for $ways', ({ ways, want }) => {
    const line = ratioLine(summaryWith(ways));
    expect(line).toBe(want);
    // Machine-readable: the two numbers parse back.
    expect(
      /^downtime ratio seed\/action at 256 MiB: (\d+\.\d\d|n\/a); podman\/action: (\d+\.\d\d|n\/a)$/.test(
        line,
      ),
    ).toBe(true);
  });

  it.each([
    {
      modes: { freeze: 1.234, restore: 1.1 },
      want: 'checkpoint freeze ratio at 256 MiB: 1.23; restore ratio at 256 MiB: 1.10',
    },
    { modes: undefined, want: 'checkpoint freeze ratio at 256 MiB: n/a; restore ratio at 256 MiB: n/a' },
  ])('modes line $want', ({ modes, want }) => {
    expect(modesLine(summaryWith({}, modes))).toBe(want);
  });
});

describe('formats', () => {
  it.each([
    { bytes: 512, want: '512 B' },
    { bytes: 1536, want: '1.5 KiB' },
    { bytes: 256 * 1024 * 1024, want: '256.0 MiB' },
    { bytes: 3 * 1024 ** 3, want: '3.0 GiB' },
    { bytes: undefined, want: 'n/a' },
  ])('fmtBytes($bytes) = $want', ({ bytes, want }) => {
    expect(fmtBytes(bytes)).toBe(want);
  });

  it.each([
    { spread: sp(2, 1, 3, 3), want: '2 (1–3)' },
    { spread: sp(2), want: '2' },
    { spread: undefined, want: 'n/a' },
  ])('range $spread', ({ spread, want }) => {
    expect(range(spread, (v) => String(v))).toBe(want);
  });

  it.each([
    { met: true, want: 'met' },
    { met: false, want: '**missed**' },
    { met: undefined, want: 'not measured' },
  ])('a target $met reads $want', ({ met, want }) => {
    expect(metText(met)).toBe(want);
  });

  it.each([
    { lo: 0.1, hi: 10, want: [0.1, 0.2, 0.5, 1, 2, 5, 10] },
    { lo: 1, hi: 1, want: [1] },
  ])('log ticks from $lo to $hi', ({ lo, hi, want }) => {
    expect(logTicks(lo, hi).map((t) => Number(t.toPrecision(3)))).toEqual(want);
  });
});

const run = (method: MigrationRun['method'], sizeMiB: number, downtimeMs: number): MigrationRun => ({
  method,
  sizeMiB,
  rep: 1,
  downtimeMs,
  totalMs: downtimeMs * 2,
  bytes: 1024 * 1024,
  continued: method !== 'podman',
  phasesMs: method === 'action' ? { checkpoint: 100, transfer: 200, restore: 300 } : undefined,
});

function report(): Report {
  const runs = [run('seed', 256, 10_000), run('action', 256, 2_000), run('podman', 256, 4_000)];
  const floors = [{ sizeMiB: 256, rep: 1, pauseMs: 10, dumpMs: 500, restoreMs: 400, checkpointBytes: 100e6 }];
  const transport = [
    {
      tool: 'openssh',
      label: 'OpenSSH | pipe',
      rep: 1,
      ms: 1000,
      bytes: 100e6,
      MBps: 100,
      runnerRssKb: 8000,
      runnerCpuS: 1,
    },
  ];
  const summary = summarise(runs, floors, transport, [], [256]);
  return {
    schema: 2,
    startedAt: '2026-11-28T12:00:00.000Z',
    finishedAt: '2026-11-28T12:30:00.000Z',
    machine: {
      cpus: 2,
      memGiB: 24,
      kernel: '6.18',
      loadStart: '1.00',
      loadEnd: '2.00',
      loadSamples: [{ at: 'x', load1: 1 }],
    },
    versions: { docker: '26', containerd: '1.7', runc: '1.1', criu: '4.2', podman: '5.4', node: 'v20' },
    dist: { sha256: 'ab'.repeat(32), changedDuringRun: false },
    settings: {
      sizes: [256],
      reps: 1,
      quick: false,
      methods: ['seed', 'action', 'podman'],
      pattern: 'random',
      floor: true,
      transport: true,
      modes: false,
      redis: false,
      redisMiB: 256,
      tick: '0.01',
      transportBytes: 100e6,
      out: 'bench/results',
      testbed: {},
    },
    summary,
    targets: evaluateTargets(summary, [256]),
    notes: ['a note'],
    runs,
    floors,
    transport,
    modes: [],
  };
}

describe('markdown', () => {
  it('one row per size and way, a podman that did not continue flagged, and the floor row', () => {
    const r = report();
    expect(resultsTable(r.summary, [256])).toEqual([
      '| size | way | downtime | total wall time | bytes between hosts | CRIU image | runner peak RSS |',
      '|---|---|---|---|---|---|---|',
      '| 256 MiB | seed | 10.00 s | 20.00 s | 1.0 MiB | n/a | n/a |',
      '| 256 MiB | action | 2.00 s | 4.00 s | 1.0 MiB | n/a | n/a |',
      '| 256 MiB | podman (did not continue!) | 4.00 s | 8.00 s | 1.0 MiB | n/a | n/a |',
      // 10 + 500 + 100 MB at 100 MB/s (1000 ms) + 400.
      '| 256 MiB | floor (computed, see below) | 1.91 s | | | 95.4 MiB | |',
    ]);
  });

  it('the floor table shows its parts and says how it is computed', () => {
    const lines = floorTable(report().summary, [256], 100);
    expect(lines[0]).toMatch(
      /pause \+ dump \+ the CRIU image's bytes at the OpenSSH relay's measured speed \(100\.0 MB\/s\) \+ the staged restore/,
    );
    expect(lines.at(-1)).toBe('| 256 MiB | 1910 | 10 | 500 | 1000 | 400 | n/a | n/a |');
  });

  it('every target says met, missed or not measured', () => {
    const lines = targetsTable(report());
    const rows = lines.slice(4);
    expect(rows.length).toBe(report().targets.length);
    for (const row of rows) expect(row).toMatch(/\| (met|\*\*missed\*\*|not measured) \|$/);
    expect(rows.find((r) => r.includes('1.2x the floor'))).toMatch(
      /action 2\.00 s \/ floor 1\.91 s = 1\.05x \| met \|$/,
    );
    expect(rows.find((r) => r.includes('5x shorter'))).toMatch(/= 5\.00x \| met \|$/);
  });

  it('the whole page names the machine, the pattern and links the chart', () => {
    const page = markdown(report());
    expect(page).toContain('Run 2026-11-28T12:00:00.000Z on 2 CPUs, 24 GiB RAM, kernel 6.18');
    expect(page).toContain('PATTERN=random');
    expect(page).toContain('- a note');
    expect(page.trimEnd().endsWith('![chart](latest.svg)')).toBe(true);
  });
});

describe('chart', () => {
  it('is one SVG document with the ways, the floor and the transport', () => {
    const svg = chart(report());
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const label of ['seed', 'action', 'podman', 'floor', 'OpenSSH']) expect(svg).toContain(`>${label}<`);
    expect(svg).not.toContain('NaN');
  });
});
