import type { Check } from './compatibility.js';

/**
 * What post-copy (memory: lazy) needs of each host, and how its page stream is
 * judged. Pure: the facts come from probe/lazy-facts.ts.
 */

/** CRIU's page server asks for pipes of this size (F_SETPIPE_SZ) when it serves lazy pages. */
export const CRIU_PAGE_PIPE_BYTES = 4 * 1024 * 1024;
/** Capability numbers in /proc/<pid>/status CapEff. */
const CAP_SYS_PTRACE = 19;
const CAP_SYS_RESOURCE = 24;

export interface LazyHostFacts {
  /** `criu check --feature uffd-noncoop` passed; undefined when not asked or CRIU is missing. */
  uffdNoncoop?: boolean;
  /** /proc/sys/fs/pipe-max-size. */
  pipeMaxSize?: number;
  /** /proc/sys/vm/unprivileged_userfaultfd (absent on old kernels: userfaultfd open to all). */
  unprivilegedUserfaultfd?: number;
  /** Effective capabilities of the login (through sudo when it is used), as a bit mask. */
  capEff?: bigint;
  uid?: number;
}

/** One command, read-only: the kernel settings and the login's capabilities. */
export const LAZY_FACTS_SCRIPT = [
  'printf "pipe-max-size %s\\n" "$(cat /proc/sys/fs/pipe-max-size 2>/dev/null)"',
  'printf "unprivileged-userfaultfd %s\\n" "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)"',
  `printf "cap-eff %s\\n" "$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"`,
  'printf "uid %s\\n" "$(id -u)"',
].join('\n');

export function parseLazyFacts(stdout: string, uffdNoncoop: boolean | undefined): LazyHostFacts {
  const value = (key: string): string | undefined => new RegExp(`^${key} (\\S+)$`, 'm').exec(stdout)?.[1];
  const number = (key: string): number | undefined => {
    const text = value(key);
    return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
  };
  const cap = value('cap-eff');
  const facts: LazyHostFacts = {};
  if (uffdNoncoop !== undefined) facts.uffdNoncoop = uffdNoncoop;
  const pipe = number('pipe-max-size');
  if (pipe !== undefined) facts.pipeMaxSize = pipe;
  const uffd = number('unprivileged-userfaultfd');
  if (uffd !== undefined) facts.unprivilegedUserfaultfd = uffd;
  if (cap && /^[0-9a-f]{1,16}$/i.test(cap)) facts.capEff = BigInt(`0x${cap}`);
  const uid = number('uid');
  if (uid !== undefined) facts.uid = uid;
  return facts;
}

function hasCap(facts: LazyHostFacts, cap: number): boolean {
  return facts.capEff !== undefined && (facts.capEff & (1n << BigInt(cap))) !== 0n;
}

/**
 * The gate's checks for a lazy migration, on both hosts: the source serves the
 * pages (CRIU's page pipes), the target takes them (userfaultfd).
 */
export function evaluateLazyPages(hosts: { source: LazyHostFacts; target: LazyHostFacts }): Check[] {
  const checks: Check[] = [];
  for (const role of ['source', 'target'] as const) {
    const facts = hosts[role];
    const fail = (name: string, observed: string, expected: string, remedy: string): Check => ({
      host: role,
      name,
      status: 'fail',
      observed,
      expected,
      remedy,
      code: 'LAZY_PAGES_UNSUPPORTED',
    });
    const pass = (name: string, observed: string, expected: string): Check => ({
      host: role,
      name,
      status: 'pass',
      observed,
      expected,
    });

    const uffdExpected = 'criu check --feature uffd-noncoop passes';
    checks.push(
      facts.uffdNoncoop === true
        ? pass('lazy pages: userfaultfd', 'uffd-noncoop supported', uffdExpected)
        : fail(
            'lazy pages: userfaultfd',
            facts.uffdNoncoop === false ? 'uffd-noncoop not supported' : 'CRIU could not be asked',
            uffdExpected,
            'use a kernel with userfaultfd and its non-cooperative events (CONFIG_USERFAULTFD, Linux 4.11 or newer) and CRIU 3.x or newer, or migrate with memory: eager',
          ),
    );

    const pipeExpected = `fs.pipe-max-size at least ${CRIU_PAGE_PIPE_BYTES} or CAP_SYS_RESOURCE (CRIU's page pipes)`;
    if (facts.pipeMaxSize === undefined) {
      checks.push(
        fail(
          'lazy pages: pipe size',
          'fs.pipe-max-size unreadable',
          pipeExpected,
          'make /proc/sys/fs/pipe-max-size readable',
        ),
      );
    } else if (facts.pipeMaxSize >= CRIU_PAGE_PIPE_BYTES || hasCap(facts, CAP_SYS_RESOURCE)) {
      checks.push(
        pass(
          'lazy pages: pipe size',
          `fs.pipe-max-size ${facts.pipeMaxSize}${hasCap(facts, CAP_SYS_RESOURCE) ? ', CAP_SYS_RESOURCE held' : ''}`,
          pipeExpected,
        ),
      );
    } else {
      checks.push(
        fail(
          'lazy pages: pipe size',
          `fs.pipe-max-size ${facts.pipeMaxSize} and no CAP_SYS_RESOURCE: CRIU's page server would fail on the first page (splice: Bad file descriptor)`,
          pipeExpected,
          `raise it on this host (sysctl -w fs.pipe-max-size=${CRIU_PAGE_PIPE_BYTES}; persist it in /etc/sysctl.d), or migrate with memory: eager`,
        ),
      );
    }

    const uffdSysExpected = 'vm.unprivileged_userfaultfd 1, or root with CAP_SYS_PTRACE';
    const rootPtrace = facts.uid === 0 && hasCap(facts, CAP_SYS_PTRACE);
    if (facts.unprivilegedUserfaultfd === undefined || facts.unprivilegedUserfaultfd === 1 || rootPtrace) {
      checks.push(
        pass(
          'lazy pages: userfaultfd permission',
          facts.unprivilegedUserfaultfd === undefined
            ? 'no vm.unprivileged_userfaultfd (userfaultfd open to all)'
            : `vm.unprivileged_userfaultfd ${facts.unprivilegedUserfaultfd}${rootPtrace ? ', root with CAP_SYS_PTRACE' : ''}`,
          uffdSysExpected,
        ),
      );
    } else {
      checks.push(
        fail(
          'lazy pages: userfaultfd permission',
          `vm.unprivileged_userfaultfd ${facts.unprivilegedUserfaultfd}, login uid ${facts.uid ?? 'unknown'} without CAP_SYS_PTRACE`,
          uffdSysExpected,
          'log in as root (or sudo: true) with CAP_SYS_PTRACE, or set vm.unprivileged_userfaultfd=1, or migrate with memory: eager',
        ),
      );
    }
  }
  return checks;
}

/** Whether the runner can carry the page stream through a host (SSH forwarding, or the runner itself). */
export function pageStreamCheck(host: 'source' | 'target', tunnels: boolean): Check {
  const expected = 'the runner can carry TCP through this host (SSH forwarding, or the runner itself)';
  return tunnels
    ? { host, name: 'lazy pages: page stream', status: 'pass', observed: 'supported', expected }
    : {
        host,
        name: 'lazy pages: page stream',
        status: 'fail',
        observed: 'this connection cannot forward TCP',
        expected,
        remedy: 'use memory: eager',
        code: 'LAZY_PAGES_UNSUPPORTED',
      };
}

/** How long the page stream may move no byte before it counts as broken (a stopped page server). */
export const LAZY_STALL_SECONDS = 60;

/** How the page stream ended, from the two CRIU processes and the relay. */
export type LazyVerdict = { ok: true } | { ok: false; why: string; host: 'source' | 'target' | 'runner' };

/**
 * Every page arrived only when both ends say so: the source's `runc checkpoint`
 * exits 0 once every page was served, the target's lazy-pages daemon once every
 * page was placed. Anything else is a broken stream.
 */
export function judgeLazyStream(ends: {
  source?: { exitCode: number | null; signal: string | null };
  target?: { exitCode: number | null; signal: string | null };
  stalledSeconds?: number;
}): LazyVerdict {
  if (ends.stalledSeconds !== undefined)
    return { ok: false, why: `no page moved for ${ends.stalledSeconds} s`, host: 'runner' };
  const said = (end: { exitCode: number | null; signal: string | null }): string =>
    end.exitCode !== null ? `exit ${end.exitCode}` : `signal ${end.signal ?? 'unknown'}`;
  if (ends.source && ends.source.exitCode !== 0)
    return { ok: false, why: `the source's page server ended with ${said(ends.source)}`, host: 'source' };
  if (ends.target && ends.target.exitCode !== 0)
    return {
      ok: false,
      why: `the target's lazy-pages daemon ended with ${said(ends.target)}`,
      host: 'target',
    };
  if (!ends.source || !ends.target)
    return { ok: false, why: 'the page stream did not finish', host: 'runner' };
  return { ok: true };
}
