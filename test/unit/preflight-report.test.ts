import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Check } from '../../src/policy/compatibility.js';
import {
  buildPreflightReport,
  checkId,
  failureMessage,
  groupByHost,
  PREFLIGHT_REPORT_SCHEMA_VERSION,
  renderPreflightRows,
  verdictLine,
  writePreflightReport,
  writePreflightSummary,
} from '../../src/report/preflight-report.js';
import type { SummaryLike, SummaryRow } from '../../src/report/summary.js';

const PASS: Check = {
  host: 'source',
  name: 'criu installed',
  status: 'pass',
  observed: '/usr/sbin/criu 4.2.1',
  expected: 'criu in PATH',
  // container-rules puts a code on passing checks too: the report leaves it out.
  code: 'CRIU_MISSING',
};
const WARN: Check = {
  host: 'source',
  name: 'tcp connections',
  status: 'warn',
  observed: '1 established: 172.17.0.2:57528 ↔ 172.17.0.3:9000',
  expected: 'no established TCP connection to peers outside the container',
  remedy: 'drain them first',
  code: 'TCP_CONNECTIONS_OPEN',
};
const FAIL: Check = {
  host: 'target',
  name: 'criu installed',
  status: 'fail',
  observed: 'not found (criu not found in PATH)',
  expected: 'criu in PATH',
  remedy: 'install CRIU 4.2 or later',
  code: 'CRIU_MISSING',
};
const BOTH: Check = {
  host: 'both',
  name: 'kernel versions',
  status: 'pass',
  observed: 'source 6.18.44, target 6.18.44',
  expected: 'the same major.minor <policy>',
};

function report(checks: Check[], strict = false) {
  return buildPreflightReport({
    checks,
    strict,
    container: 'pf-web',
    source: 'root@127.0.0.4:22',
    target: 'root@127.0.0.5:22',
    kernelPolicy: 'same-minor',
    startedAt: '2026-11-25T12:00:00.000Z',
    durationMs: 1234.4,
  });
}

class FakeSummary implements SummaryLike {
  readonly parts: string[] = [];
  tables: SummaryRow[][] = [];
  written = 0;
  addHeading(text: string): SummaryLike {
    this.parts.push(`# ${text}`);
    return this;
  }
  addTable(rows: SummaryRow[]): SummaryLike {
    this.tables.push(rows);
    return this;
  }
  addRaw(text: string): SummaryLike {
    this.parts.push(text);
    return this;
  }
  async write(): Promise<unknown> {
    this.written++;
    return this;
  }
}

describe('buildPreflightReport', () => {
  it.each([
    ['all pass', [PASS, BOTH], false, 'passed', []],
    ['a warning passes', [PASS, WARN], false, 'passed', []],
    ['a warning fails with strict', [PASS, WARN], true, 'failed', ['TCP_CONNECTIONS_OPEN']],
    ['a failure fails', [PASS, WARN, FAIL], false, 'failed', ['CRIU_MISSING']],
    ['each code once', [FAIL, { ...FAIL, host: 'source' as const }], false, 'failed', ['CRIU_MISSING']],
  ] as const)('%s', (_title, checks, strict, result, codes) => {
    const built = report([...checks], strict);
    expect(built.result).toBe(result);
    expect(built.blockingCodes).toEqual(codes);
  });

  it('keeps every field a consumer needs, and no code or remedy on passing checks', () => {
    const built = report([PASS, WARN, FAIL, BOTH]);
    expect(built).toMatchObject({
      schemaVersion: PREFLIGHT_REPORT_SCHEMA_VERSION,
      container: 'pf-web',
      hosts: { source: 'root@127.0.0.4:22', target: 'root@127.0.0.5:22' },
      kernelPolicy: 'same-minor',
      durationMs: 1234,
      counts: { pass: 2, warn: 1, fail: 1 },
    });
    expect(built.checks[0]).toEqual({
      id: 'criu-installed',
      host: 'source',
      name: 'criu installed',
      status: 'pass',
      observed: '/usr/sbin/criu 4.2.1',
      expected: 'criu in PATH',
    });
    expect(built.checks[2]).toMatchObject({
      id: 'criu-installed',
      host: 'target',
      code: 'CRIU_MISSING',
      remedy: 'install CRIU 4.2 or later',
    });
    // Round-trips as the `report` output does.
    expect(JSON.parse(JSON.stringify(built))).toEqual(built);
  });

  it('gives a failing check without a code the generic one', () => {
    const { code: _drop, ...bare } = FAIL;
    expect(report([bare]).checks[0]?.code).toBe('PREFLIGHT_FAILED');
  });
});

describe('checkId', () => {
  it('is the name in kebab-case', () => {
    expect(checkId('criu vs kernel vDSO')).toBe('criu-vs-kernel-vdso');
    expect(checkId('bind mount /data')).toBe('bind-mount-data');
    expect(checkId('ipc and pid namespaces')).toBe('ipc-and-pid-namespaces');
  });
});

describe('texts', () => {
  it('groups by host: source, target, both', () => {
    expect(groupByHost([BOTH, FAIL, PASS]).map(([host, list]) => [host, list.length])).toEqual([
      ['source', 1],
      ['target', 1],
      ['both', 1],
    ]);
  });

  it('says how the gate ended, with the failing codes and their remedies', () => {
    expect(verdictLine(report([PASS, WARN]))).toBe(
      'preflight passed: 1 passed, 1 warning, 0 failed in 1.23 s (warnings do not fail the gate unless strict: true)',
    );
    expect(verdictLine(report([PASS, WARN], true))).toMatch(
      /^preflight failed: .*\(strict: warnings count as failures\); TCP_CONNECTIONS_OPEN$/,
    );
    const message = failureMessage(report([PASS, WARN, FAIL]));
    expect(message.split('\n')).toEqual([
      'preflight failed: 1 passed, 1 warning, 1 failed in 1.23 s; CRIU_MISSING',
      'CRIU_MISSING: [target] criu installed: not found (criu not found in PATH)',
      '  What to do: install CRIU 4.2 or later',
      '  About CRIU_MISSING: docs/errors.md#criu_missing',
    ]);
    const linked = failureMessage(report([PASS, WARN, FAIL]), {
      GITHUB_SERVER_URL: 'https://github.example.com',
      GITHUB_ACTION_REPOSITORY: 'acme/criu-container-migrate',
      GITHUB_ACTION_REF: 'v0',
    });
    expect(linked).toContain(
      'About CRIU_MISSING: https://github.example.com/acme/criu-container-migrate/blob/v0/docs/errors.md#criu_missing',
    );
  });
});

describe('summary', () => {
  it('puts failures first, escapes HTML, and shows code and remedy only for problems', () => {
    const rows = renderPreflightRows(report([PASS, BOTH, WARN, FAIL]));
    expect(rows[0]).toEqual(
      ['Status', 'Host', 'Check', 'Observed', 'Expected', 'Remedy'].map((data) => ({ data, header: true })),
    );
    expect(rows.slice(1).map((row) => row[0])).toEqual(['❌ fail', '⚠️ warn', '✅ pass', '✅ pass']);
    expect(rows[1]?.[5]).toBe(
      '<a href="docs/errors.md#criu_missing"><code>CRIU_MISSING</code></a>: install CRIU 4.2 or later',
    );
    expect(rows[3]?.[5]).toBe('—');
    expect(rows[4]?.[4]).toBe('the same major.minor &#60;policy&#62;');
  });

  it('writes a heading, the verdict and the table', async () => {
    const summary = new FakeSummary();
    await writePreflightSummary(summary, report([PASS, FAIL]));
    expect(summary.parts[0]).toBe('# Preflight: pf-web from root@127.0.0.4:22 to root@127.0.0.5:22');
    expect(summary.parts[1]).toMatch(/^<p>⛔ preflight failed/);
    expect(summary.tables).toHaveLength(1);
    expect(summary.written).toBe(1);
  });
});

describe('writePreflightReport', () => {
  it('writes the JSON file, creating its directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'preflight-report-'));
    try {
      const path = join(dir, 'criu-migrate', 'preflight-report.json');
      const built = report([PASS, FAIL]);
      await writePreflightReport(path, built);
      expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(built);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
