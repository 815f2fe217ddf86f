/**
 * What every way of the benchmark shares: the context it runs in, and the one
 * interface a way implements. A migration way moves a container (the counter
 * or the redis service) from host 1 to host 2; the others (floor, modes,
 * transport) measure parts of it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCounter } from '../../../test/e2e/testbed.js';
import type { BenchBed } from '../bed.js';
import { log, sleep } from '../bed.js';
import type { Options } from '../options.js';
import type { MigrationRun, MigrationWay } from '../report.js';

/** The bed's busybox image plus the bench's workload (scripts/bench/workload/bench-counter.sh), built by images.ts. */
export const BASE_IMAGE = 'testbed/busybox:1';
export const IMAGE = 'bench/counter:1';
export const WORKLOAD = '/usr/local/bin/bench-counter';
export const TICK = '0.01';
export const PODMAN = 'PODMAN_IGNORE_CGROUPSV1_WARNING=1 podman';

export interface BenchContext {
  bed: BenchBed;
  opts: Options;
  root: string;
  /** The copy of dist/index.js the runs execute (a rebuild during a run changes nothing). */
  actionEntry: string;
}

/** One measurement of one way: `size` in MiB, `rep` from 1. */
export interface Way<R> {
  readonly name: string;
  measure(ctx: BenchContext, size: number, rep: number): Promise<R>;
}

export type Runtime = 'docker' | 'podman';

/** A container to move: how it is created, so a way that recreates it (the seed) can. */
export interface ContainerSpec {
  name: string;
  image: string;
  /** `docker create` / `podman run` options, the same for every way. */
  createOpts: string;
  /** The command, when the image's own is not it. */
  command: string;
}

/** What a migration way reports about its move; the workload's view is added by the caller. */
export type MoveResult = Omit<MigrationRun, 'method' | 'sizeMiB' | 'rep' | 'downtimeMs' | 'continued'>;

export interface Migration {
  readonly way: MigrationWay;
  readonly runtime: Runtime;
  move(ctx: BenchContext, container: ContainerSpec): Promise<MoveResult>;
}

export const benchScript = (ctx: BenchContext, name: string): string => join(ctx.root, 'scripts/bench', name);

/** "key value" lines -> numbers (and strings where they do not parse). */
export function keyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([\w.]+) (.+)$/.exec(line.trim());
    if (m && Number.isFinite(Number(m[2]))) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function stepsOf(kv: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(kv)
      .filter(([k]) => k.startsWith('step.'))
      .map(([k, v]) => [k.slice(5), v]),
  );
}

/**
 * The counter's container, the same for every way: no network (Podman's
 * netavark would have to configure the machine's own namespace, where the
 * hosts' sshd live), seccomp unconfined (the seed article asks for it).
 */
export function counterSpec(
  ctx: BenchContext,
  name: string,
  sizeMiB: number,
  runtime: Runtime,
): ContainerSpec {
  const common = `--security-opt seccomp=unconfined --network none -e MB=${sizeMiB} -e TICK=${TICK} -e PATTERN=${ctx.opts.pattern}`;
  return {
    name,
    image: IMAGE,
    createOpts: runtime === 'docker' ? `--runtime=runc ${common}` : common,
    command: WORKLOAD,
  };
}

export const logsCommand = (runtime: Runtime, name: string): string =>
  runtime === 'docker' ? `docker logs ${name} 2>&1` : `${PODMAN} logs ${name} 2>&1`;

export async function startContainer(
  ctx: BenchContext,
  runtime: Runtime,
  host: string,
  spec: ContainerSpec,
): Promise<void> {
  const cli = runtime === 'docker' ? 'docker' : PODMAN;
  await ctx.bed.must(
    host,
    `${cli} run -d --name ${spec.name} ${spec.createOpts} ${spec.image} ${spec.command} >/dev/null`,
  );
}

/** Starts the counter and waits until it holds its memory and ticks. */
export async function startCounter(
  ctx: BenchContext,
  runtime: Runtime,
  host: string,
  spec: ContainerSpec,
  sizeMiB: number,
): Promise<void> {
  await startContainer(ctx, runtime, host, spec);
  // Building the value: about 80 s for 1 GiB with busybox on 2 cores.
  const deadline = Date.now() + 60_000 + sizeMiB * 300;
  for (;;) {
    const text = (await ctx.bed.on(host, logsCommand(runtime, spec.name))).stdout;
    const at = text.indexOf('start ');
    if (at >= 0 && parseCounter(text.slice(at)).length >= 10) return;
    if (Date.now() > deadline) throw new Error(`${spec.name}: the workload did not start in time`);
    await sleep(1000);
  }
}

/**
 * Waits until the restored copy printed lines stamped after this call, then
 * reads both logs. Lines past the source's last are not enough: whenever the
 * holder runs behind the ticker (as it did while counter.sh still read its
 * whole value on a timer), the pipe holds a backlog of old timestamps, and a
 * restored copy prints that backlog first, so its first lines hide the gap.
 */
export async function bothLogs(
  ctx: BenchContext,
  runtime: Runtime,
  source: { host: string; name: string },
  target: { host: string; name: string },
): Promise<{ sourceText: string; targetText: string }> {
  const now = Date.now();
  const sourceText = (await ctx.bed.on(source.host, logsCommand(runtime, source.name))).stdout;
  const lastN = parseCounter(sourceText).at(-1)?.n ?? 0;
  let targetText = '';
  for (let i = 0; i < 240; i++) {
    targetText = (await ctx.bed.on(target.host, logsCommand(runtime, target.name))).stdout;
    const fresh = parseCounter(targetText).filter((l) => l.n > lastN && l.ms > now);
    if (fresh.length >= 10) return { sourceText, targetText };
    await sleep(500);
  }
  throw new Error(`${target.name} on ${target.host} printed no lines stamped after its migration`);
}

/** Removes everything a bench run leaves on a host, and fails if anything is left. */
export async function cleanHost(ctx: BenchContext, host: string): Promise<void> {
  const podman = withPodman(ctx);
  const list = [
    'docker ps -aq --filter name=^bench-',
    ...(podman ? [`${PODMAN} ps -aq --filter name=^bench-`] : []),
  ];
  const result = await ctx.bed.on(
    host,
    [
      'docker ps -aq --filter name=^bench- | xargs -r docker rm -f >/dev/null 2>&1',
      'docker image rm -f myapp-image:restored >/dev/null 2>&1',
      podman
        ? `${list[1]} | PODMAN_IGNORE_CGROUPSV1_WARNING=1 xargs -r podman rm -f -t 0 >/dev/null 2>&1`
        : 'true',
      // The action's records of bench containers too (journal, lock, history, work files), and the floor's staging.
      'rm -rf /tmp/checkpoint1.tar.gz /tmp/myapp-fs.tar.gz /tmp/bench-*.tar.zst /tmp/bench-*.tar /tmp/ctrd-checkpoint* /var/lib/criu-migrate/bench-* /var/lib/criu-migrate/containers/bench-* /var/lib/criu-migrate/work/bench-* /var/lib/docker/bench-floor-stage.*',
      'sync',
      `{ ${list.join('; ')}; } 2>/dev/null`,
    ].join('; '),
  );
  if (result.stdout.trim() !== '')
    throw new Error(`${host}: bench containers left after cleanup: ${result.stdout.trim()}`);
}

export const withPodman = (ctx: BenchContext): boolean =>
  ctx.opts.methods.some((m) => m === 'podman' || m === 'podman-uncompressed');

/**
 * Asks the counter for the checksum of its whole value and waits for its
 * answer ("sum <request> <md5>"); undefined with the reason when it gave none
 * in time (a check that was not made, never a pass).
 */
export async function counterSum(
  ctx: BenchContext,
  runtime: Runtime,
  host: string,
  name: string,
  sizeMiB: number,
): Promise<{ sum?: string; why?: string }> {
  const request = `${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  const cli = runtime === 'docker' ? 'docker' : PODMAN;
  const asked = await ctx.bed.on(
    host,
    `${cli} exec ${name} sh -c 'echo ${request} >/tmp/bench-counter-check'`,
  );
  if (asked.code !== 0) return { why: `exec failed: ${asked.stderr.trim().slice(-200)}` };
  // md5 of 1 GiB takes seconds on a loaded two-core machine; the bound grows with the size.
  const deadline = Date.now() + 30_000 + sizeMiB * 60;
  const want = new RegExp(`^sum ${request} ([0-9a-f]{32})$`, 'm');
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const m = want.exec((await ctx.bed.on(host, logsCommand(runtime, name))).stdout);
    if (m) return { sum: m[1] };
    await sleep(300);
  }
  return { why: 'no answer from the workload in time' };
}

export const scriptLines = (path: string): string => readFileSync(path, 'utf8');
export { log };
