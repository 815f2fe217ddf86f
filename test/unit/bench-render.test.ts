import { describe, expect, it } from 'vitest';
import { modesLine, ratioLine } from '../../scripts/bench/render/final-line.js';
import { fmtBytes, metText, range } from '../../scripts/bench/render/format.js';
import {
  floorTable,
  lazyTable,
  markdown,
  memoryCell,
  redisTable,
  resultsTable,
  targetsTable,
  yesNo,
} from '../../scripts/bench/render/markdown.js';
import { chart, logTicks } from '../../scripts/bench/render/svg.js';
import type { MigrationRun, Report, Summary } from '../../scripts/bench/report.js';
import { evaluateTargets, summarise } from '../../scripts/bench/stats.js';

const sp = (median: number, min = median, max = median, n = 1) => ({ median, min, max, n });

function summaryWith(
  ways: Partial<Record<'seed' | 'action' | 'action-overlap' | 'podman' | 'podman-uncompressed', number>>,
  modes?: { freeze: number; restore: number },
  floorMs?: number,
): Summary {
  const entry: Summary['bySize'][string] = { ways: {} };
  if (floorMs !== undefined) entry.floor = { floorMs: sp(floorMs), transferTool: 'host-to-host' };
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
      floor: 1_600,
      want: 'downtime ratio seed/action at 256 MiB: 5.00; podman/action: 2.50; action/floor: 1.25',
    },
    {
      // Podman's best configuration is the one in the line.
      ways: { seed: 10_000, action: 2_000, podman: 5_000, 'podman-uncompressed': 3_000 },
      floor: 2_000,
      want: 'downtime ratio seed/action at 256 MiB: 5.00; podman/action: 1.50; action/floor: 1.00',
    },
    {
      ways: { seed: 3_000, action: 2_000 },
      floor: undefined,
      want: 'downtime ratio seed/action at 256 MiB: 1.50; podman/action: n/a; action/floor: n/a',
    },
    {
      ways: { seed: 3_000, podman: 2_000 },
      floor: 1_000,
      want: 'downtime ratio seed/action at 256 MiB: n/a; podman/action: n/a; action/floor: n/a',
    },
    {
      ways: {},
      floor: undefined,
      want: 'downtime ratio seed/action at 256 MiB: n/a; podman/action: n/a; action/floor: n/a',
    },
  ])('ratio line for $ways, floor $floor', ({ ways, floor, want }) => {
    const line = ratioLine(summaryWith(ways, undefined, floor));
    expect(line).toBe(want);
    // Machine-readable: the three numbers parse back.
    expect(
      /^downtime ratio seed\/action at 256 MiB: (\d+\.\d\d|n\/a); podman\/action: (\d+\.\d\d|n\/a); action\/floor: (\d+\.\d\d|n\/a)$/.test(
        line,
      ),
    ).toBe(true);
  });

  it('ratio line: memory: overlap, when it ran, is appended after the three fields', () => {
    const line = ratioLine(
      summaryWith({ seed: 10_000, action: 2_000, 'action-overlap': 1_500 }, undefined, 1_600),
    );
    expect(line).toBe(
      'downtime ratio seed/action at 256 MiB: 5.00; podman/action: n/a; action/floor: 1.25; overlap/floor: 0.94',
    );
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
  memory:
    method === 'seed'
      ? { status: 'intact', before: 'a', after: 'a' }
      : method === 'podman'
        ? { status: 'differs', before: 'a', after: 'b' }
        : undefined,
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
      '| size | way | downtime | memory (content checksum) | total wall time | bytes between hosts | CRIU image | runner peak RSS |',
      '|---|---|---|---|---|---|---|---|',
      '| 256 MiB | seed | 10.00 s | intact 1/1 | 20.00 s | 1.0 MiB | n/a | n/a |',
      // No check made: said, never counted as intact.
      '| 256 MiB | action | 2.00 s | **not checked 1/1** | 4.00 s | 1.0 MiB | n/a | n/a |',
      '| 256 MiB | podman (did not continue!) | 4.00 s | **differs 1/1** | 8.00 s | 1.0 MiB | n/a | n/a |',
      // 10 + 500 + 100 MB at 100 MB/s (1000 ms) + 400.
      '| 256 MiB | floor (computed, openssh) | 1.91 s | | | | 95.4 MiB | |',
      // 10 + max(500, 1000) + 400.
      '| 256 MiB | overlap floor (dump and transfer at once) | 1.41 s | | | | | |',
    ]);
  });

  it('the floor table names the transport that set it and shows both floors', () => {
    const lines = floorTable(report().summary, [256]);
    expect(lines[0]).toMatch(
      /pause \+ dump \+ the CRIU image's bytes at the fastest transport measured in this run \(openssh, 100\.0 MB\/s median;/,
    );
    expect(lines[0]).toMatch(
      /overlap floor lets dump and transfer run at once: pause \+ max\(dump, transfer\)/,
    );
    expect(lines.at(-1)).toBe('| 256 MiB | 1910 | 1410 | n/a | 10 | 500 | n/a | 1000 | 400 | n/a | n/a |');
  });

  it.each([
    { memory: undefined, failed: 0, want: 'not checked' },
    { memory: { intact: 0, differs: 0, notChecked: 0 }, failed: 3, want: 'not measured (every run failed)' },
    { memory: { intact: 2, differs: 0, notChecked: 0 }, failed: 1, want: 'intact 2/2' },
    {
      memory: { intact: 1, differs: 1, notChecked: 1 },
      failed: 0,
      want: 'intact 1/3, **differs 1/3**, **not checked 1/3**',
    },
  ])('memory cell $want', ({ memory, failed, want }) => {
    expect(memoryCell(memory, failed)).toBe(want);
  });

  it('the redis table says "not measured" for a way whose every run failed, never "no"', () => {
    const r = report();
    const runs: MigrationRun[] = [
      { method: 'podman', workload: 'redis', sizeMiB: 64, rep: 1, error: 'did not answer' },
      {
        method: 'action',
        workload: 'redis',
        sizeMiB: 64,
        rep: 1,
        downtimeMs: 1000,
        redis: { runIdKept: true, keysBefore: 5, keysAfter: 5 },
        memory: { status: 'intact', before: 'd', after: 'd' },
      },
    ];
    r.summary = summarise(runs, [], [], [], [256]);
    const lines = redisTable(r);
    expect(lines.find((l) => l.startsWith('| podman'))).toBe(
      '| podman (1 failed of 1) | n/a | n/a | n/a | not measured | not measured | not measured (every run failed) |',
    );
    expect(lines.find((l) => l.startsWith('| action'))).toMatch(/\| yes \| yes \| intact 1\/1 \|$/);
  });

  it('yesNo', () => {
    expect([yesNo(true), yesNo(false), yesNo(undefined)]).toEqual(['yes', '**no**', 'not measured']);
  });

  it('every target says met, missed or not measured', () => {
    const lines = targetsTable(report());
    const rows = lines.slice(4);
    expect(rows.length).toBe(report().targets.length);
    for (const row of rows) expect(row).toMatch(/\| (met|\*\*missed\*\*|not measured) \|$/);
    expect(rows.find((r) => r.includes('256 MiB at most 1.2x the floor'))).toMatch(
      /action 2\.00 s \/ floor 1\.91 s \(openssh\) = 1\.05x; 1\.42x the overlap floor 1\.41 s \| met \|$/,
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

describe('lazyTable', () => {
  it('puts the last page beside the downtime, and the frozen window by step', () => {
    const runs: MigrationRun[] = [256, 1024].map((sizeMiB) => ({
      method: 'action-lazy',
      sizeMiB,
      rep: 1,
      downtimeMs: 700,
      continued: true,
      lastPageMs: sizeMiB * 10,
      reportedDowntimeMs: 650,
      memory: { status: 'intact', before: 'a', after: 'a' },
      windowMs: { pause: 60, dump: 300, commands: 7 },
    }));
    const table = lazyTable(summarise(runs, [], [], [], [256, 1024]), [256, 1024]);
    expect(table[2]).toBe(
      '| size | downtime | last page | memory | downtime-ms output | pause | dump | commands |',
    );
    expect(table[4]).toContain('| 256 MiB | 0.70 s | 2.56 s | intact 1/1 | 650 |');
    expect(table[5]).toContain('| 1024 MiB | 0.70 s | 10.24 s |');
    expect(table[5]).toMatch(/\| 60 \| 300 \| 7 \|$/);
    expect(lazyTable(summarise([], [], [], [], [256]), [256])).toEqual([]);
  });
});
