/**
 * The transport alone: N bytes host 1 -> runner -> host 2 through OpenSSH
 * (ssh | ssh, fresh connections) and through the action's SSH code
 * (scripts/bench/transport-probe.ts, compiled with ncc into a temporary directory).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../../test/e2e/process.js';
import { sshArgs } from '../../../test/e2e/testbed.js';
import { check, log } from '../bed.js';
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

async function openssh(ctx: BenchContext): Promise<Measured> {
  // Fresh connections, like the probe's: no control master.
  const bed = { ...ctx.bed.testbed, controlDir: undefined };
  const bytes = ctx.opts.transportBytes;
  const dir = mkdtempSync(join(tmpdir(), 'bench-ossh-'));
  try {
    const quote = (args: string[]) => args.map((a) => `'${a}'`).join(' ');
    const src = `ssh ${quote(sshArgs(bed, bed.host1))} 'head -c ${bytes} /dev/zero'`;
    const dst = `ssh ${quote(sshArgs(bed, bed.host2))} 'cat >/dev/null'`;
    const t = (f: string) => `/usr/bin/time -f '${TIME_FORMAT}' -o ${dir}/${f}`;
    const r = await check(['bash', '-o', 'pipefail', '-c', `${t('a')} ${src} | ${t('b')} ${dst}`], {
      timeoutMs: 900_000,
    });
    const [a, b] = ['a', 'b'].map((f) => readTime(readFileSync(join(dir, f), 'utf8')));
    return {
      ms: Math.round(r.ms),
      bytes,
      runnerRssKb: (a?.rssKb ?? 0) + (b?.rssKb ?? 0),
      runnerCpuS: (a?.cpuS ?? 0) + (b?.cpuS ?? 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const TOOLS = {
  openssh: {
    label: 'OpenSSH: ssh | ssh (the relay the floor uses)',
    fn: (ctx: BenchContext, _dir: string) => openssh(ctx),
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
        results.push({ tool, label: TOOLS[tool].label, rep, ...r, MBps });
      }
      return results;
    },
  };
}
