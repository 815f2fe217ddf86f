import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { summary as coreSummary } from '@actions/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { earlyRun } from '../../src/modes/run-control.js';
import {
  type MetadataError,
  type MigrationMetadata,
  metadataError,
  writeMetadata,
} from '../../src/report/metadata.js';
import {
  formatBytes,
  formatMs,
  renderSummaryRows,
  type SummaryLike,
  type SummaryRow,
  writeFailureSummary,
  writeSummary,
} from '../../src/report/summary.js';
import { PhaseTimer } from '../../src/report/timings.js';
import type { HostLocation } from '../../src/settings.js';

const SUCCESS: MigrationMetadata = {
  schemaVersion: 1,
  run: {
    mode: 'migrate',
    status: 'succeeded',
    startedAt: '2026-03-04T05:06:07.000Z',
    finishedAt: '2026-03-04T05:06:19.500Z',
  },
  hosts: {
    source: {
      address: 'root@127.0.0.2:22',
      kernel: '6.18.0',
      arch: 'x86_64',
      criu: '4.2',
      docker: '26.1.5',
      containerd: '1.7.24',
      runc: '1.1.15',
    },
    target: { address: 'root@[2001:db8::5]:22', kernel: '6.18.0' },
  },
  container: {
    name: 'counter',
    sourceId: 'a'.repeat(64),
    targetId: 'b'.repeat(64),
    imageId: `sha256:${'c'.repeat(64)}`,
    imageRef: 'testbed/counter:1',
  },
  checkpoint: {
    name: 'counter-20260304T050607Z',
    bytes: 5 * 1024 * 1024,
    transferredBytes: 6 * 1024 * 1024 + 512 * 1024,
    streams: {
      checkpoint: { bytes: 5 * 1024 * 1024, sha256: 'd'.repeat(64) },
      writableLayer: { bytes: 1536 * 1024, sha256: 'e'.repeat(64) },
    },
  },
  timings: {
    phasesMs: { connect: 120, preflight: 800, checkpoint: 310, transfer: 95, restore: 640, verify: 1200 },
    downtimeMs: 1045,
    durationMs: 12_500,
  },
  criu: { freezingTimeUs: 1500, frozenTimeUs: 300_000, pagesWritten: 1280 },
};

const FAILURE: MigrationMetadata = {
  ...SUCCESS,
  run: { ...SUCCESS.run, status: 'rolled-back' },
  container: { name: 'counter', sourceId: 'a'.repeat(64) },
  checkpoint: { name: 'counter-20260304T050607Z', streams: {} },
  timings: { phasesMs: { connect: 100, restore: 50, rollback: 400 } },
  error: {
    code: 'RESTORE_FAILED',
    message: 'criu restore failed: <missing pages-1.img>',
    step: 'restore',
    host: 'target root@[2001:db8::5]:22',
    remedy: 'read the CRIU log lines above & check the target has the same files',
  },
};

function table(rows: SummaryRow[]): Map<string, string> {
  const cells = rows.slice(1).map((row) => row.map((cell) => (typeof cell === 'string' ? cell : cell.data)));
  return new Map(cells.map(([label = '', value = '']) => [label, value]));
}

class FakeSummary implements SummaryLike {
  readonly calls: [string, unknown[]][] = [];
  written = 0;
  addHeading(text: string, level?: number | string): this {
    this.calls.push(['heading', [text, level]]);
    return this;
  }
  addTable(rows: SummaryRow[]): this {
    this.calls.push(['table', [rows]]);
    return this;
  }
  addRaw(text: string, addEOL?: boolean): this {
    this.calls.push(['raw', [text, addEOL]]);
    return this;
  }
  async write(): Promise<this> {
    this.written += 1;
    return this;
  }
}

describe('renderSummaryRows', () => {
  it('starts with a header row', () => {
    expect(renderSummaryRows(SUCCESS)[0]).toEqual([
      { data: 'Item', header: true },
      { data: 'Value', header: true },
    ]);
  });

  it('shows status, hosts, container, checkpoint, downtime, duration, bytes and phases', () => {
    const rows = table(renderSummaryRows(SUCCESS));
    expect(rows.get('Status')).toBe('✅ succeeded');
    expect(rows.get('Mode')).toBe('migrate');
    expect(rows.get('Source')).toBe(
      'root@127.0.0.2:22 (kernel 6.18.0, x86_64, CRIU 4.2, Docker 26.1.5, containerd 1.7.24, runc 1.1.15)',
    );
    expect(rows.get('Target')).toBe('root@[2001:db8::5]:22 (kernel 6.18.0)');
    expect(rows.get('Container')).toBe('counter (aaaaaaaaaaaa → bbbbbbbbbbbb)');
    expect(rows.get('Image')).toBe('testbed/counter:1 cccccccccccc');
    expect(rows.get('Checkpoint')).toBe('counter-20260304T050607Z');
    expect(rows.get('Downtime')).toBe('1.04 s');
    expect(rows.get('Duration')).toBe('12.50 s');
    expect(rows.get('Checkpoint size')).toBe('5.0 MiB');
    expect(rows.get('Bytes moved')).toBe('6.5 MiB');
    expect(rows.get('Stream: checkpoint images')).toBe('5.0 MiB, sha256 dddddddddddddddd…');
    expect(rows.get('Stream: writable layer')).toBe('1.5 MiB, sha256 eeeeeeeeeeeeeeee…');
    expect(rows.has('Stream: image')).toBe(false);
    const phases = [...rows.keys()].filter((label) => label.startsWith('Phase: '));
    expect(phases).toEqual([
      'Phase: connect',
      'Phase: preflight',
      'Phase: checkpoint',
      'Phase: transfer',
      'Phase: restore',
      'Phase: verify',
    ]);
    expect(rows.get('Phase: transfer')).toBe('95 ms');
    expect(rows.has('Error')).toBe(false);
  });

  it('shows which restore path the target took, and why when it was the full copy', () => {
    expect(table(renderSummaryRows(SUCCESS)).has('Restore path')).toBe(false);
    const staged = {
      ...SUCCESS,
      checkpoint: { ...SUCCESS.checkpoint, restorePath: 'staged-pages' as const },
    };
    expect(table(renderSummaryRows(staged)).get('Restore path')).toMatch(/^staged pages/);
    const full = {
      ...SUCCESS,
      checkpoint: {
        ...SUCCESS.checkpoint,
        restorePath: 'full-copy' as const,
        restorePathReason: 'cannot read the environment of containerd 42',
      },
    };
    expect(table(renderSummaryRows(full)).get('Restore path')).toBe(
      'full copy (cannot read the environment of containerd 42)',
    );
  });

  it('shows the error with its code, step, host and remedy, HTML-escaped', () => {
    const rows = table(renderSummaryRows(FAILURE));
    expect(rows.get('Status')).toBe('↩️ failed or cancelled, source resumed');
    expect(rows.get('Error')).toBe(
      '<a href="docs/errors.md#restore_failed"><code>RESTORE_FAILED</code></a>: criu restore failed: &#60;missing pages-1.img&#62; (step restore on target root@[2001:db8::5]:22)',
    );
    expect(rows.get('What to do')).toBe(
      'read the CRIU log lines above &#38; check the target has the same files',
    );
    expect(rows.get('Container')).toBe('counter (aaaaaaaaaaaa → ?)');
    expect(rows.has('Downtime')).toBe(false);
    expect(rows.has('Bytes moved')).toBe(false);
    expect(rows.get('Phase: rollback')).toBe('400 ms');
  });

  it.each([
    ['refused', '⛔ refused before touching the container'],
    ['failed', '❌ failed'],
  ] as const)('labels status %s', (status, label) => {
    const rows = table(renderSummaryRows({ ...FAILURE, run: { ...FAILURE.run, status } }));
    expect(rows.get('Status')).toBe(label);
  });
});

describe('writeSummary', () => {
  it('adds a heading and the table, then writes once', async () => {
    const fake = new FakeSummary();
    await writeSummary(fake, SUCCESS);
    expect(fake.calls.map(([kind]) => kind)).toEqual(['heading', 'table', 'raw']);
    expect(fake.calls[0]).toEqual(['heading', ['Container migration: counter', 2]]);
    expect(fake.calls[1]?.[1][0]).toEqual(renderSummaryRows(SUCCESS));
    expect(fake.written).toBe(1);
  });

  it('leaves out the downtime note when there was no downtime', async () => {
    const fake = new FakeSummary();
    await writeSummary(fake, FAILURE);
    expect(fake.calls.map(([kind]) => kind)).toEqual(['heading', 'table']);
  });

  it('accepts the real @actions/core summary object', () => {
    expectTypeOf<typeof coreSummary>().toExtend<SummaryLike>();
  });
});

describe('formatting', () => {
  it.each([
    [0, '0 ms'],
    [999.4, '999 ms'],
    [1000, '1.00 s'],
    [59_994, '59.99 s'],
    [61_000, '1 min 1 s'],
    [3_600_000, '60 min 0 s'],
  ])('formatMs(%d) = %s', (ms, text) => {
    expect(formatMs(ms)).toBe(text);
  });

  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536 * 1024, '1.5 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
    [2 * 1024 ** 4, '2.0 TiB'],
  ])('formatBytes(%d) = %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('PhaseTimer', () => {
  const fakeClock = () => {
    let now = 0;
    return { clock: () => now, advance: (ms: number) => (now += ms) };
  };

  it('records each phase, accumulating repeats, in phase order', async () => {
    const { clock, advance } = fakeClock();
    const timer = new PhaseTimer(clock);
    timer.start('transfer');
    advance(40.4);
    expect(timer.end('transfer')).toBeCloseTo(40.4);
    const value = await timer.time('connect', () => {
      advance(10);
      return 'done';
    });
    expect(value).toBe('done');
    await timer.time('transfer', async () => advance(20));
    expect(timer.toRecord()).toEqual({ connect: 10, transfer: 60 });
    expect(Object.keys(timer.toRecord())).toEqual(['connect', 'transfer']);
  });

  it('records a phase that throws and rethrows', async () => {
    const { clock, advance } = fakeClock();
    const timer = new PhaseTimer(clock);
    await expect(
      timer.time('restore', () => {
        advance(7);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(timer.get('restore')).toBe(7);
    expect(timer.running()).toEqual([]);
  });

  it('ends phases still running', () => {
    const { clock, advance } = fakeClock();
    const timer = new PhaseTimer(clock);
    timer.start('checkpoint');
    timer.start('transfer');
    advance(5);
    expect(timer.running()).toEqual(['checkpoint', 'transfer']);
    timer.endAll();
    expect(timer.toRecord()).toEqual({ checkpoint: 5, transfer: 5 });
  });

  it('rejects misuse', () => {
    const timer = new PhaseTimer(() => 0);
    expect(() => timer.end('verify')).toThrow('phase verify was not started');
    timer.start('verify');
    expect(() => timer.start('verify')).toThrow('phase verify is already running');
  });
});

describe('metadata', () => {
  it('writes 2-space JSON, creating the directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metadata-test-'));
    try {
      const path = join(dir, 'nested', 'deeper', 'migration.json');
      await writeMetadata(path, SUCCESS);
      const text = await readFile(path, 'utf8');
      expect(text).toBe(`${JSON.stringify(SUCCESS, null, 2)}\n`);
      expect(JSON.parse(text)).toEqual(SUCCESS);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps code, message, step, host and remedy of an error, not its detail', () => {
    const error = new MigrationError('CHECKSUM_MISMATCH', 'sha256 differs', {
      step: 'transfer',
      host: 'target h2',
      remedy: 'retry',
      detail: 'long log',
    });
    expect(metadataError(error)).toEqual({
      code: 'CHECKSUM_MISMATCH',
      message: 'sha256 differs',
      step: 'transfer',
      host: 'target h2',
      remedy: 'retry',
    });
    expect(metadataError(new TypeError('x is undefined'))).toEqual({
      code: 'UNEXPECTED',
      message: 'x is undefined',
    });
  });
});

describe('volumes in the summary', () => {
  it('lists each volume with its size, the bytes of each pass and the last stream sha256', () => {
    const rows = renderSummaryRows({
      ...SUCCESS,
      volumes: [
        {
          name: 'pgdata',
          sizeBytes: 2 * 1024 ** 3,
          target: 'created',
          contentsMoved: true,
          passes: [
            { pass: 'bulk', bytes: 2 * 1024 ** 3, sha256: '1'.repeat(64), ms: 20_000 },
            { pass: 'frozen', bytes: 10 * 1024 ** 2, sha256: '2'.repeat(64), ms: 300 },
          ],
          sha256: '2'.repeat(64),
        },
        { name: 'nfs', target: 'stored', contentsMoved: false, passes: [] },
      ],
    });
    const text = rows.map((row) =>
      row.map((cell) => (typeof cell === 'string' ? cell : cell.data)).join(' | '),
    );
    expect(text).toContain(
      `Volume: pgdata | created on the target; size 2.0 GiB; bulk 2.0 GiB in ${formatMs(20_000)}, frozen 10.0 MiB in ${formatMs(300)}; sha256 2222222222222222…`,
    );
    expect(text).toContain('Volume: nfs | kept with the checkpoint; contents not moved (driver options)');
  });
});

describe('drill in the summary', () => {
  const drill = (facts: NonNullable<MigrationMetadata['drill']>) =>
    table(renderSummaryRows({ ...SUCCESS, run: { ...SUCCESS.run, mode: 'drill' }, drill: facts }));

  it('says restorable, the copy and what it did, and never its log lines', () => {
    const rows = drill({
      restorable: 'true',
      copy: 'web-drill-ab12cd34',
      series: 'a59fd1db4de3',
      firstProcess: '/bin/sh /usr/local/bin/testbed-counter',
      logLines: 33,
      watchedMs: 3200,
      recorded: true,
    });
    expect(rows.get('Restorable')).toBe('✅ true');
    expect(rows.get('Drill host')).toBe('root@[2001:db8::5]:22 (kernel 6.18.0)');
    expect(rows.get('Drill copy')).toBe(
      'web-drill-ab12cd34: ran, watched 3.20 s, first process /bin/sh /usr/local/bin/testbed-counter, 33 log lines after the restore, removed',
    );
    expect(rows.get('Recorded in the store')).toBe('yes (drill.json next to the checkpoint)');
  });

  it('gives the reason when not restorable or unknown', () => {
    expect(drill({ restorable: 'false', reason: 'CHECKSUM_MISMATCH: damaged' }).get('Restorable')).toBe(
      '❌ false: CHECKSUM_MISMATCH: damaged',
    );
    expect(drill({ restorable: 'unknown', reason: 'CANCELLED: stop' }).get('Restorable')).toBe(
      '❔ unknown (the drill could not tell): CANCELLED: stop',
    );
  });
});

describe('hosts by mode', () => {
  it('calls the second host the store in checkpoint mode, and the first the store in restore mode', () => {
    const checkpoint = table(renderSummaryRows({ ...SUCCESS, run: { ...SUCCESS.run, mode: 'checkpoint' } }));
    expect(checkpoint.get('Source')).toMatch(/^root@127\.0\.0\.2:22 /);
    expect(checkpoint.get('Store')).toBe('root@[2001:db8::5]:22 (kernel 6.18.0)');
    expect(checkpoint.has('Target')).toBe(false);
    const restore = table(renderSummaryRows({ ...SUCCESS, run: { ...SUCCESS.run, mode: 'restore' } }));
    expect(restore.get('Store')).toMatch(/^root@127\.0\.0\.2:22 /);
    expect(restore.get('Target')).toBe('root@[2001:db8::5]:22 (kernel 6.18.0)');
    expect(restore.has('Source')).toBe(false);
  });

  it("links the error's code to docs/errors.md at the action's ref", () => {
    const rows = table(
      renderSummaryRows(FAILURE, {
        GITHUB_SERVER_URL: 'https://github.example.com',
        GITHUB_ACTION_REPOSITORY: 'acme/criu-container-migrate',
        GITHUB_ACTION_REF: 'v0.1.0',
      }),
    );
    expect(rows.get('Error')).toMatch(
      /^<a href="https:\/\/github\.example\.com\/acme\/criu-container-migrate\/blob\/v0\.1\.0\/docs\/errors\.md#restore_failed"><code>RESTORE_FAILED<\/code><\/a>: /,
    );
  });
});

describe('writeFailureSummary', () => {
  const ssh = (host: string): HostLocation => ({ kind: 'ssh', spec: { user: 'root', host, port: 22 } });
  const texts = (fake: FakeSummary): string[] => fake.calls.map(([, args]) => String(args[0]));

  it('names checkpoint mode, its outcome, its source and its store', async () => {
    const fake = new FakeSummary();
    const error: MetadataError = { code: 'COMMAND_FAILED', message: 'writing metadata.json: disk full' };
    const run = earlyRun(
      { mode: 'checkpoint', container: 'db', source: ssh('10.0.0.1'), store: { host: ssh('10.0.0.9') } },
      error,
      'checkpoint',
    );
    await writeFailureSummary(fake, error, run);
    const [heading, message, facts] = texts(fake);
    expect(heading).toBe('CRIU checkpoint failed');
    expect(message).toBe(
      '<p>❌ <a href="docs/errors.md#command_failed"><code>COMMAND_FAILED</code></a>: writing metadata.json: disk full</p>',
    );
    expect(facts).toBe(
      '<p>Mode: checkpoint<br>Container: db<br>Source: root@10.0.0.1:22<br>Store: root@10.0.0.9:22</p>',
    );
    expect(fake.written).toBe(1);
  });

  it('says a restore that could not connect was refused, naming the store and the target', async () => {
    const fake = new FakeSummary();
    const error: MetadataError = {
      code: 'SSH_UNREACHABLE',
      message: 'connect ECONNREFUSED',
      step: 'connect',
      host: 'target root@10.0.0.2:22',
      remedy: 'check the address',
    };
    const run = earlyRun(
      {
        mode: 'restore',
        container: 'db',
        source: ssh('10.0.0.1'),
        target: ssh('10.0.0.2'),
        store: { host: ssh('10.0.0.9') },
      },
      error,
      'restore',
    );
    await writeFailureSummary(fake, error, run);
    const [heading, message, facts, remedy] = texts(fake);
    expect(heading).toBe('CRIU restore refused');
    expect(message).toMatch(/^<p>⛔ <a href="docs\/errors\.md#ssh_unreachable">/);
    expect(message).toContain('(step connect on target root@10.0.0.2:22)');
    expect(facts).toBe(
      '<p>Mode: restore<br>Container: db<br>Store: root@10.0.0.9:22<br>Target: root@10.0.0.2:22</p>',
    );
    expect(remedy).toBe('<p>What to do: check the address</p>');
  });

  it('names the mode from the raw input when the inputs did not parse, and nothing else', async () => {
    const error: MetadataError = {
      code: 'INPUT_INVALID',
      message: 'store-host: "a b" is not [user@]host[:port]',
    };
    for (const [raw, heading] of [
      ['restore', 'CRIU restore refused'],
      ['', 'CRIU migration refused'],
      ['checkpoint ', 'CRIU checkpoint refused'],
      ['teleport', 'CRIU run refused'],
    ] as const) {
      const fake = new FakeSummary();
      await writeFailureSummary(fake, error, earlyRun(undefined, error, raw));
      expect(texts(fake)[0], raw).toBe(heading);
      const facts = texts(fake).find((text) => text.includes('Mode: '));
      expect(facts, raw).toBe(raw === 'teleport' ? undefined : `<p>Mode: ${raw.trim() || 'migrate'}</p>`);
    }
  });

  it('calls a migrate-mode failure after connecting a failure, not a refusal', () => {
    const settings = { mode: 'migrate' as const, container: 'web', source: ssh('a'), target: ssh('b') };
    expect(earlyRun(settings, { code: 'NOT_ROOT' }, 'migrate').outcome).toBe('refused');
    expect(earlyRun(settings, { code: 'MIGRATION_IN_PROGRESS' }, 'migrate').outcome).toBe('refused');
    expect(earlyRun(settings, { code: 'SSH_DISCONNECTED', step: 'connect' }, 'migrate').outcome).toBe(
      'refused',
    );
    expect(earlyRun(settings, { code: 'SSH_DISCONNECTED', step: 'finalize' }, 'migrate').outcome).toBe(
      'failed',
    );
    expect(earlyRun(settings, { code: 'UNEXPECTED' }, 'migrate').outcome).toBe('failed');
  });
});
