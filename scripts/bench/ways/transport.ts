/**
 * The transport alone: N bytes from host 1 to host 2, through the runner with
 * OpenSSH (ssh | ssh) and with the action's SSH code
 * (scripts/bench/transport-probe.ts, compiled with ncc into a temporary
 * directory), and straight from host 1 to host 2 with OpenSSH. Every clock
 * starts with the connections already open (see CLOCK). OpenSSH prefers the
 * ciphers the action's own client does (AES-GCM first): with its default,
 * chacha20, the floor's bytes were priced slower than the action moves them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPENSSH_CIPHERS } from '../../../src/policy/direct-route.js';
import { runProcess } from '../../../test/e2e/process.js';
import { sshArgs } from '../../../test/e2e/testbed.js';
import { check, log, sleep } from '../bed.js';
import type { TransportRun } from '../report.js';
import { readTime, TIME_FORMAT } from './action.js';
import { type BenchContext, benchScript, type Way } from './way.js';

export async function buildProbe(ctx: BenchContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-probe-'));
  log('compiling the transport probe (src/host/ssh-host.ts + relay.ts) with ncc into a temporary directory');
  await check(
    [
      join(ctx.root, 'node_modules/.bin/ncc'),
      'build',
      benchScript(ctx, 'transport-probe.ts'),
      '-o',
      dir,
      '--no-source-map-register',
      '-q',
    ],
    {
      timeoutMs: 300_000,
    },
  );
  return dir;
}

interface Measured {
  ms: number;
  bytes: number;
  runnerRssKb: number;
  runnerCpuS: number;
}

async function probe(ctx: BenchContext, probeDir: string, mode: 'relay' | 'raw'): Promise<Measured> {
  const bed = ctx.bed.testbed;
  const timeFile = join(probeDir, 'time');
  const args = JSON.stringify({
    from: bed.host1,
    to: bed.host2,
    key: bed.sshKeyPath,
    knownHosts: bed.knownHostsPath,
    bytes: ctx.opts.transportBytes,
    mode,
  });
  const r = await runProcess(
    ['/usr/bin/time', '-f', TIME_FORMAT, '-o', timeFile, process.execPath, join(probeDir, 'index.js'), args],
    { timeoutMs: 900_000 },
  );
  if (r.code !== 0) throw new Error(`probe ${mode} failed: ${r.stderr.slice(-800)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { ms: number; bytes: number };
  const t = readTime(readFileSync(timeFile, 'utf8'));
  return { ms: out.ms, bytes: out.bytes, runnerRssKb: t.rssKb, runnerCpuS: t.cpuS };
}

/** Where every transport clock of the bench starts and stops. */
export const CLOCK =
  'after the SSH connections are open (handshakes outside), until the receiver has read the last byte';

/** Peak RSS (KiB) and CPU seconds so far of a live process, from /proc. */
function procUsage(pid: number): { rssKb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
  // Fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 per second).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKb, cpuS: (Number(rest[11]) + Number(rest[12])) / 100 };
}

async function openssh(ctx: BenchContext): Promise<Measured> {
  const bytes = ctx.opts.transportBytes;
  const dir = mkdtempSync(join(tmpdir(), 'bench-ossh-'));
  // Its own control connections, opened before the clock: their CPU and memory count as the runner's.
  const bed = { ...ctx.bed.testbed, controlDir: dir };
  const hosts = [bed.host1, bed.host2];
  const masters = hosts.map((h) =>
    spawn(
      'ssh',
      [
        ...sshArgs({ ...bed, controlDir: undefined }, h),
        '-o',
        `Ciphers=${OPENSSH_CIPHERS}`,
        '-M',
        '-N',
        '-o',
        'ControlMaster=yes',
        '-o',
        `ControlPath=${dir}/%C`,
      ],
      {
        stdio: 'ignore',
      },
    ),
  );
  try {
    for (let i = 0; ; i++) {
      const ok = await Promise.all(
        hosts.map((h) => runProcess(['ssh', ...sshArgs(bed, h), '-O', 'check'], { timeoutMs: 5000 })),
      );
      if (ok.every((r) => r.code === 0)) break;
      if (i >= 100) throw new Error('the OpenSSH control connections did not open');
      await sleep(100);
    }
    const before = masters.map((m) => procUsage(m.pid ?? 0));
    const quote = (args: string[]) => args.map((a) => `'${a}'`).join(' ');
    const src = `ssh ${quote(sshArgs(bed, bed.host1))} 'head -c ${bytes} /dev/zero'`;
    const dst = `ssh ${quote(sshArgs(bed, bed.host2))} 'cat >/dev/null'`;
    const t = (f: string) => `/usr/bin/time -f '${TIME_FORMAT}' -o ${dir}/${f}`;
    const r = await check(['bash', '-o', 'pipefail', '-c', `${t('a')} ${src} | ${t('b')} ${dst}`], {
      timeoutMs: 900_000,
    });
    const after = masters.map((m) => procUsage(m.pid ?? 0));
    const [a, b] = ['a', 'b'].map((f) => readTime(readFileSync(join(dir, f), 'utf8')));
    const mastersRss = after.reduce((sum, u) => sum + u.rssKb, 0);
    const mastersCpu = after.reduce((sum, u, i) => sum + u.cpuS - (before[i]?.cpuS ?? 0), 0);
    return {
      ms: Math.round(r.ms),
      bytes,
      runnerRssKb: (a?.rssKb ?? 0) + (b?.rssKb ?? 0) + mastersRss,
      runnerCpuS: (a?.cpuS ?? 0) + (b?.cpuS ?? 0) + mastersCpu,
    };
  } finally {
    for (const m of masters) if (m.exitCode === null) m.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Host 1 sends to host 2 itself with OpenSSH: the route every live-migration
 * tool that streams host to host takes. Host 1 gets the bed's client key for
 * the measurement only (the bench's own bed), opens a control connection to
 * host 2 before the clock, and times the copy on its own clock, so no
 * round trip to the runner is inside it.
 */
async function hostToHost(ctx: BenchContext): Promise<Measured> {
  const bed = ctx.bed.testbed;
  const bytes = ctx.opts.transportBytes;
  const m = /^(.+)@(.+):(\d+)$/.exec(bed.host2);
  if (!m) throw new Error(`bad destination ${bed.host2}`);
  const dir = '/root/.bench-h2h';
  const opts = `-o BatchMode=yes -o Ciphers=${OPENSSH_CIPHERS} -o UserKnownHostsFile=${dir}/known_hosts -o StrictHostKeyChecking=yes -i ${dir}/key -o IdentitiesOnly=yes -o ControlPath=${dir}/ctl -p ${m[3]} ${m[1]}@${m[2]}`;
  await ctx.bed.must(
    bed.host1,
    `rm -rf ${dir} && mkdir -m 700 ${dir} && cat >${dir}/key && chmod 600 ${dir}/key && cp /dev/null ${dir}/known_hosts`,
    { input: readFileSync(bed.sshKeyPath, 'utf8') },
  );
  try {
    await ctx.bed.must(bed.host1, `cat >${dir}/known_hosts`, {
      input: readFileSync(bed.knownHostsPath, 'utf8'),
    });
    await ctx.bed.must(bed.host1, `ssh -f -M -N -o ControlMaster=yes ${opts} </dev/null >/dev/null 2>&1`, {
      timeoutMs: 30_000,
    });
    const out = await ctx.bed.must(
      bed.host1,
      `t0=$(date +%s%N); head -c ${bytes} /dev/zero | ssh -o ControlMaster=no ${opts} 'cat >/dev/null' || exit 1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))`,
      { timeoutMs: 900_000 },
    );
    const ms = Number(out.trim().split('\n').at(-1));
    if (!(ms > 0)) throw new Error(`host to host: no time measured (${out.trim().slice(-200)})`);
    return { ms, bytes, runnerRssKb: 0, runnerCpuS: 0 };
  } finally {
    // The key leaves host 1 whatever happened.
    await ctx.bed.on(bed.host1, `ssh ${opts} -O exit >/dev/null 2>&1; rm -rf ${dir}`);
  }
}

export const TOOLS = {
  openssh: {
    label: 'OpenSSH relay through the runner: ssh | ssh (AES-GCM, as the action)',
    fn: (ctx: BenchContext, _dir: string) => openssh(ctx),
  },
  'host-to-host': {
    label: 'OpenSSH from host 1 straight to host 2 (no runner, AES-GCM, as the action)',
    fn: (ctx: BenchContext, _dir: string) => hostToHost(ctx),
  },
  action: {
    label: "action's SSH code: streamBetween (sha256 on both ends)",
    fn: (ctx: BenchContext, dir: string) => probe(ctx, dir, 'relay'),
  },
  'action-raw': {
    label: "diagnostic: the action's SSH channels piped directly, no sha256",
    fn: (ctx: BenchContext, dir: string) => probe(ctx, dir, 'raw'),
  },
} as const;

/** One repetition: every tool once, the order rotated by repetition. */
export function transport(probeDir: string): Way<TransportRun[]> {
  return {
    name: 'transport',
    async measure(ctx, _size, rep) {
      const order = Object.keys(TOOLS) as (keyof typeof TOOLS)[];
      const rotated = order.map((_, i) => order[(i + rep - 1) % order.length]!);
      const results: TransportRun[] = [];
      for (const tool of rotated) {
        const r = await TOOLS[tool].fn(ctx, probeDir);
        const MBps = r.bytes / r.ms / 1000;
        log(
          `transport ${tool} rep ${rep}: ${r.bytes} bytes in ${(r.ms / 1000).toFixed(2)} s = ${MBps.toFixed(1)} MB/s`,
        );
        results.push({ tool, label: TOOLS[tool].label, clock: CLOCK, rep, ...r, MBps });
      }
      return results;
    },
  };
}
