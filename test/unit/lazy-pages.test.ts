import { describe, expect, it } from 'vitest';
import { lazyDaemonCommand, lazyServerCommand, portFreeScript } from '../../src/engine/docker/lazy-pages.js';
import { MigrationError } from '../../src/errors.js';
import type { Host } from '../../src/host/host.js';
import type { PageRelay } from '../../src/host/page-relay.js';
import { type LazySession, lazyChecks, withLostWork } from '../../src/phases/lazy-pages.js';
import {
  CRIU_PAGE_PIPE_BYTES,
  evaluateLazyPages,
  judgeLazyStream,
  LAZY_FACTS_SCRIPT,
  type LazyHostFacts,
  parseLazyFacts,
} from '../../src/policy/lazy-pages.js';
import type { HostFacts } from '../../src/probe/facts.js';
import { buildPreflightReport } from '../../src/report/preflight-report.js';

// CapEff of root on the test bed: everything but CAP_SYS_RESOURCE (bit 24).
const BED_ROOT = '000001fffeffffff';
const FULL_ROOT = '000001ffffffffff';

function facts(lines: Record<string, string>, uffd: boolean | undefined = true): LazyHostFacts {
  const text = Object.entries(lines)
    .map(([key, value]) => `${key} ${value}`)
    .join('\n');
  return parseLazyFacts(`${text}\n`, uffd);
}

const good = facts({
  'pipe-max-size': String(CRIU_PAGE_PIPE_BYTES),
  'unprivileged-userfaultfd': '0',
  'cap-eff': BED_ROOT,
  uid: '0',
});

function failed(source: LazyHostFacts, target: LazyHostFacts = good): string[] {
  return evaluateLazyPages({ source, target })
    .filter((check) => check.status === 'fail')
    .map((check) => `${check.host} ${check.name} ${check.code}`);
}

describe('parseLazyFacts', () => {
  it('reads the probe, and leaves out what it could not read', () => {
    expect(good).toEqual({
      uffdNoncoop: true,
      pipeMaxSize: CRIU_PAGE_PIPE_BYTES,
      unprivilegedUserfaultfd: 0,
      capEff: 0x1fffeffffffn,
      uid: 0,
    });
    expect(
      parseLazyFacts('pipe-max-size \nunprivileged-userfaultfd \ncap-eff zz\nuid \n', undefined),
    ).toEqual({});
  });
});

describe('evaluateLazyPages', () => {
  it('passes the bed once the pipe limit is raised', () => {
    expect(failed(good)).toEqual([]);
  });

  it("refuses the bed's 1 MiB pipes without CAP_SYS_RESOURCE, and passes them with it", () => {
    const small = { ...good, pipeMaxSize: 1024 * 1024 };
    expect(failed(small)).toEqual(['source lazy pages: pipe size LAZY_PAGES_UNSUPPORTED']);
    expect(failed(good, small)).toEqual(['target lazy pages: pipe size LAZY_PAGES_UNSUPPORTED']);
    expect(failed({ ...small, capEff: BigInt(`0x${FULL_ROOT}`) })).toEqual([]);
    const check = evaluateLazyPages({ source: small, target: good }).find((c) => c.status === 'fail');
    expect(check?.remedy).toContain('fs.pipe-max-size=4194304');
  });

  it('needs uffd-noncoop on both hosts', () => {
    expect(failed({ ...good, uffdNoncoop: false })).toEqual([
      'source lazy pages: userfaultfd LAZY_PAGES_UNSUPPORTED',
    ]);
    const { uffdNoncoop: _unknown, ...unasked } = good;
    expect(failed(good, unasked)).toEqual(['target lazy pages: userfaultfd LAZY_PAGES_UNSUPPORTED']);
  });

  it('needs unprivileged userfaultfd, or root with CAP_SYS_PTRACE', () => {
    const user = { ...good, uid: 1000, capEff: 0n };
    expect(failed(user)).toEqual(['source lazy pages: userfaultfd permission LAZY_PAGES_UNSUPPORTED']);
    expect(failed({ ...user, unprivilegedUserfaultfd: 1 })).toEqual([]);
    const { unprivilegedUserfaultfd: _none, ...oldKernel } = user;
    expect(failed(oldKernel)).toEqual([]);
    // Root whose bounding set lost CAP_SYS_PTRACE (bit 19).
    expect(failed({ ...good, capEff: 0x1fffeffffffn & ~(1n << 19n) })).toEqual([
      'source lazy pages: userfaultfd permission LAZY_PAGES_UNSUPPORTED',
    ]);
  });
});

describe('judgeLazyStream', () => {
  const ok = { exitCode: 0, signal: null };
  it('is complete only when both ends exited 0', () => {
    expect(judgeLazyStream({ source: ok, target: ok })).toEqual({ ok: true });
    expect(judgeLazyStream({ source: ok })).toMatchObject({ ok: false, host: 'runner' });
  });

  it('names the end that failed, and a stall', () => {
    expect(judgeLazyStream({ source: { exitCode: 1, signal: null }, target: ok })).toMatchObject({
      ok: false,
      host: 'source',
      why: "the source's page server ended with exit 1",
    });
    expect(judgeLazyStream({ target: { exitCode: null, signal: 'KILL' } })).toMatchObject({
      ok: false,
      host: 'target',
      why: "the target's lazy-pages daemon ended with signal KILL",
    });
    expect(judgeLazyStream({ source: ok, target: ok, stalledSeconds: 61 })).toMatchObject({
      ok: false,
      host: 'runner',
    });
  });
});

describe('lazy page commands', () => {
  it('serves the pages on the loopback only; waits for go, freezes again at the NUL, names the inventory', () => {
    const command = lazyServerCommand(
      {
        runcRoot: '/run/docker/runtime-runc/moby',
        containerId: 'c'.repeat(64),
        imagesDir: '/w/images',
        workDir: '/w/criu',
        port: 45123,
      },
      'mark',
    );
    const lines = command.split('\n');
    expect(lines[1]).toBe('IFS= read -r go || exit 125; [ "$go" = go ] || exit 125');
    expect(command).toMatch(/--lazy-pages --page-server 127\.0\.0\.1\\?:45123 --status-fd 3/);
    expect(command).toContain('--leave-running');
    expect(command).toContain(`3>"$d/status" >/dev/null </dev/null &`);
    // The second freeze comes right after the NUL, in the same shell, before the mark line.
    const pause = lines.findIndex((line) => line.includes(`pause ${'c'.repeat(64)}`));
    expect(pause).toBeGreaterThan(lines.findIndex((line) => line.includes('head -c1')));
    expect(lines[pause]).toContain("printf 'mark %s\\n'");
    expect(lines[pause]).toContain("echo 'mark-failed'");
    expect(lines.at(-1)).toBe('wait "$p"');
  });

  it("starts the target's daemon only on go, and says when its socket exists", () => {
    const command = lazyDaemonCommand({ imagesDir: '/i', workDir: '/w', port: 41000 });
    expect(command).toMatch(/lazy-pages --page-server --address '?127\.0\.0\.1'? --port '?41000'?/);
    const lines = command.split('\n');
    expect(lines[0]).toContain('mkdir -p /w');
    expect(lines[1]).toContain('read -r go');
    expect(command).toContain('[ -S /w/lazy-pages.socket ]; then echo listening; else echo no-socket;');
  });

  it('looks the port up in hex in /proc/net/tcp', () => {
    expect(portFreeScript(45123)).toContain(':B043$');
    expect(portFreeScript(80)).toContain(':0050$');
  });
});

describe('withLostWork', () => {
  const relay: PageRelay = {
    port: 1,
    bytes: () => 0,
    bytesBack: () => 0,
    lastMovedAt: () => 0,
    problem: () => undefined,
    close: async () => {},
    cut: () => {},
  };
  const session = (fields: Partial<LazySession>): LazySession => ({
    sourcePort: 2,
    relay,
    close: async () => {},
    watch: () => {},
    ...fields,
  });
  const cancelled = new MigrationError('CANCELLED', 'the run was cancelled (SIGINT)', {
    remedy: 'run again',
  });

  it('tells the operator that the target ran and its work is lost, once the restore may have started', () => {
    const said = withLostWork(cancelled, session({ targetMayHaveRun: true }));
    expect(said.code).toBe('CANCELLED');
    expect(said.remedy).toMatch(/^run again\. memory: lazy: .*since it started is lost/);
  });

  it('says nothing before the restore, after the last page, or where the code says it already', () => {
    expect(withLostWork(cancelled, undefined)).toBe(cancelled);
    expect(withLostWork(cancelled, session({}))).toBe(cancelled);
    expect(withLostWork(cancelled, session({ targetMayHaveRun: true, lastPageAt: 5 }))).toBe(cancelled);
    const broken = new MigrationError('LAZY_PAGES_BROKEN', 'the page stream broke');
    expect(withLostWork(broken, session({ targetMayHaveRun: true }))).toBe(broken);
  });
});

describe('lazyChecks (preflight mode and the migrate gate)', () => {
  const criu = (uffd: boolean): Pick<HostFacts, 'criu'> => ({
    criu: {
      present: true,
      path: '/usr/sbin/criu',
      check: { ok: true, exitCode: 0, tail: [], summary: 'Looks good.' },
      features: { 'uffd-noncoop': uffd },
    },
  });
  /** A host whose only command is the read-only lazy facts probe. */
  const probeHost = (pipeMax: number): Pick<Host, 'run'> & { asked: string[] } => {
    const asked: string[] = [];
    return {
      asked,
      run: async (command: string) => {
        asked.push(command);
        return {
          exitCode: 0,
          stdout: `pipe-max-size ${pipeMax}\nunprivileged-userfaultfd 0\ncap-eff ${BED_ROOT}\nuid 0\n`,
          stderr: '',
        };
      },
    };
  };

  it('reports every lazy check of both hosts, and the same refusal code the gate uses', async () => {
    const source = probeHost(1024 * 1024);
    const target = probeHost(CRIU_PAGE_PIPE_BYTES);
    const checks = await lazyChecks(
      { source, target },
      { source: true, target: false },
      { source: criu(true), target: criu(false) },
    );
    expect(source.asked).toEqual([LAZY_FACTS_SCRIPT]);
    expect(target.asked).toEqual([LAZY_FACTS_SCRIPT]);
    expect(
      checks.filter((check) => check.status === 'fail').map((c) => `${c.host} ${c.name} ${c.code}`),
    ).toEqual([
      'source lazy pages: pipe size LAZY_PAGES_UNSUPPORTED',
      'target lazy pages: userfaultfd LAZY_PAGES_UNSUPPORTED',
      'target lazy pages: page stream LAZY_PAGES_UNSUPPORTED',
    ]);
    const report = buildPreflightReport({
      checks,
      strict: false,
      container: 'web',
      source: 'root@127.0.0.2:22',
      target: 'root@127.0.0.3:22',
      kernelPolicy: 'same-minor',
      startedAt: '2026-12-07T00:00:00.000Z',
      durationMs: 1,
    });
    expect(report.result).toBe('failed');
    expect(report.blockingCodes).toEqual(['LAZY_PAGES_UNSUPPORTED']);
  });

  it('passes hosts that serve and take pages and carry the stream', async () => {
    const checks = await lazyChecks(
      { source: probeHost(CRIU_PAGE_PIPE_BYTES), target: probeHost(CRIU_PAGE_PIPE_BYTES) },
      { source: true, target: true },
      { source: criu(true), target: criu(true) },
    );
    expect(checks.map((check) => check.status)).toEqual(checks.map(() => 'pass'));
    expect(checks).toHaveLength(8);
  });
});
