/**
 * npm run bench [-- options]: see USAGE in options.ts. scripts/bench/run.sh
 * compiles this with tsc into bench/tmp/ and runs it with Node 20.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { OPENSSH_CIPHERS } from '../../src/policy/direct-route.js';
import { BenchBed, log } from './bed.js';
import { type Options, parseOptions, USAGE } from './options.js';
import { modesLine, ratioLine } from './render/final-line.js';
import { markdown } from './render/markdown.js';
import { chart } from './render/svg.js';
import type { FloorRun, MigrationRun, ModesRun, Report, TransportRun } from './report.js';
import { evaluateTargets, LAZY_TARGET, summarise } from './stats.js';
import { unitSection } from './unit-section.js';
import { floor } from './ways/floor.js';
import { buildWorkloadImage, copyImage } from './ways/images.js';
import { counterMigration, MIGRATIONS } from './ways/migrate.js';
import { modes } from './ways/modes.js';
import { redis } from './ways/redis.js';
import { buildProbe, transport } from './ways/transport.js';
import { type BenchContext, cleanHost, IMAGE, PODMAN, TICK } from './ways/way.js';

const ROOT = resolve(process.env.BENCH_ROOT ?? process.cwd());
const DIST_ENTRY = join(ROOT, 'dist/index.js');

/** Podman's graph root: its overlay driver refuses the hosts' overlay root, so real ext4. */
const PODMAN_STORAGE_CONF = `[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/docker/podman-storage"
`;

async function preparePodman(ctx: BenchContext): Promise<void> {
  const { bed } = ctx;
  for (const host of [bed.host1, bed.host2]) {
    if ((await bed.on(host, 'command -v podman >/dev/null')).code !== 0) {
      log(`${host}: installing podman into the bench host (apt, once; its upper layer keeps it)`);
      await bed.must(
        host,
        'export DEBIAN_FRONTEND=noninteractive; apt-get -qq -o Acquire::Check-Valid-Until=false update && apt-get install -y -qq --no-install-recommends podman >/dev/null',
        { timeoutMs: 900_000 },
      );
    }
    if ((await bed.on(host, 'cat /etc/containers/storage.conf 2>/dev/null')).stdout !== PODMAN_STORAGE_CONF) {
      await bed.must(
        host,
        'mkdir -p /etc/containers /var/lib/docker/podman-storage && cat >/etc/containers/storage.conf && rm -rf /run/containers/storage',
        {
          input: PODMAN_STORAGE_CONF,
        },
      );
    }
  }
}

async function versions(ctx: BenchContext, withPodman: boolean): Promise<Record<string, string>> {
  const v = await ctx.bed.on(
    ctx.bed.host1,
    [
      "docker version --format '{{.Server.Version}}'",
      ...['containerd', 'runc', 'criu'].map((p) => `dpkg-query -W -f '\${Version}\\n' ${p}`),
      withPodman ? `${PODMAN} --version | cut -d' ' -f3` : 'echo n/a',
      // Which OCI runtime Podman runs its containers with (its default on this host).
      withPodman
        ? `${PODMAN} info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}' | head -n1`
        : 'echo n/a',
      // Pre-copy (criu pre-dump) needs the kernel's soft-dirty tracking.
      'criu check --feature mem_dirty_track >/dev/null 2>&1 && echo yes || echo no',
    ].join('; '),
  );
  const [
    docker = '?',
    containerd = '?',
    runc = '?',
    criu = '?',
    podman = '?',
    podmanRuntime = '?',
    dirtyTrack = '?',
  ] = v.stdout.trim().split('\n');
  return {
    docker,
    containerd,
    runc,
    criu,
    podman,
    podmanRuntime,
    node: process.version,
    memDirtyTrack: dirtyTrack,
  };
}

function notes(report: Report, runs: MigrationRun[]): string[] {
  const codecs = [...new Set(runs.filter((r) => r.method === 'action' && r.codec).map((r) => r.codec))];
  const paths = [
    ...new Set(runs.filter((r) => r.method === 'action' && r.restorePath).map((r) => r.restorePath)),
  ];
  return [
    `Memory pattern ${report.settings.pattern} (scripts/bench/workload/bench-counter.sh, the test bed's counter.sh plus the checksum): random is incompressible (urandom bytes, NUL and newline mapped to \\001), text is random letters of a 16-character alphabet (compressors halve it), zeros is one repeated byte. The holder never forks except to compute a requested checksum (once before the move, answered before the move starts; once after it), so a dump holds one copy of the memory.`,
    `The action ran with default settings (compression: auto); codec per its metadata JSON: ${codecs.join('; ') || 'not recorded by this build of the action'}; restore path: ${paths.join(', ') || 'n/a'}.`,
    "The action's times are read from the metadata JSON it writes (outputs.metadata-path): timings.phasesMs, timings.downtimeMs, checkpoint.bytes and transferredBytes, criu.frozenTimeUs (CRIU's own dump time); CRIU's restore time from the restore.log containerd keeps.",
    "Runner peak RSS: the action's node process (/usr/bin/time around it); for seed and Podman, both OpenSSH control connections plus the largest relay pipeline.",
    `The floor is computed per repetition: floor.sh's pause + dump + staged restore on host 1, plus the CRIU image's bytes at the fastest median speed of the transport section (${report.summary.bySize[String(report.settings.sizes.at(-1))]?.floor?.transferTool ?? 'none measured'}); the overlap floor puts max(dump, transfer) in place of their sum.`,
    `Podman ${report.versions.podman} runs with OCI runtime ${report.versions.podmanRuntime ?? 'not recorded'} (podman info) and CRIU from the same host root, storage driver overlay on ext4 (/var/lib/docker/podman-storage), export including root file system changes: once with its default (zstd) and once with --compress none. All containers use --network none.`,
    'Memory by content: the counter prints the md5 of its whole value when asked (scripts/bench/workload/bench-counter.sh), on the source before the move and on the target after it; redis answers DEBUG DIGEST (started with --enable-debug-command local). A run whose check could not be made counts as "not checked", never as intact.',
    'The image is on host 2 before the run (Docker and Podman), as after a registry pull; the seed procedure moves the file system with docker export/import by design.',
    "Total wall time: the action process from start to exit; the seed and Podman scripts from start to exit. Bytes between hosts: the action's checkpoint.transferredBytes; for seed and Podman, the bytes the relay copied.",
    `Every OpenSSH connection of the bench (the seed's and Podman's copies, the transport section's relay and host-to-host copy, so the floor) offers the ciphers the action's own client does, AES-GCM first (${OPENSSH_CIPHERS}): with OpenSSH's default, chacha20, 1 GiB took 2.9-3.4 s host to host on these hosts against 1.8-2.5 s with AES-GCM (by hand, 2026-12-07), so a floor priced at chacha20's speed was not a lower bound.`,
    `Pre-copy: not applied: the action dumps once while frozen; criu pre-dump needs mem_dirty_track, which these hosts report as "${report.versions.memDirtyTrack ?? 'not read'}". CRIU's page server (dumping and sending at once) is used only by the way action-overlap (memory: overlap), whose pages are summed with sha256 on both hosts as they pass (its bytes between hosts include them); the action's default dumps to disk first.`,
    ...(runs.some((r) => r.method === 'action-lazy')
      ? [
          "action-lazy is the action with memory: lazy (post-copy): the container runs on host 2 before its memory has arrived, the pages follow from the frozen source through the runner; its downtime is what the workload saw, its last page the action's timings.lastPageMs (from the freeze), its memory check the workload's md5 after the last page. fs.pipe-max-size was raised to 4 MiB for these runs (CRIU's page pipes; the bed's hosts lack CAP_SYS_RESOURCE).",
        ]
      : []),
    `The workload prints every TICK=${TICK} s; each line carries the wall clock read by a ticker beside it (adjtimex, to the microsecond, printed in ms), so downtimes are good to about one tick.`,
  ];
}

/** latest.* for the full bench; a post-copy-only run (--lazy) writes lazy.* and leaves latest.* alone. */
function writeResults(report: Report, out: string): void {
  const base = report.settings.lazy ? 'lazy' : 'latest';
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, `${base}.svg`), chart(report));
  const table = markdown(report).replace('![chart](latest.svg)', `![chart](${base}.svg)`);
  writeFileSync(join(out, `${base}.md`), table);
  process.stdout.write(`${table}\n`);
  log(`results: ${relative(ROOT, join(out, `${base}.md`))}, ${base}.json, ${base}.svg`);
}

function finish(report: Report): void {
  if (report.settings.lazy) {
    // The post-copy section's verdict is its last line: the ratio line needs ways it did not run.
    const lazy = report.targets.find((target) => target.target === LAZY_TARGET);
    const verdict = lazy?.met === undefined ? 'not measured' : lazy.met ? 'met' : 'missed';
    process.stdout.write(`lazy target ${verdict}: ${lazy?.observed ?? 'not measured'}\n`);
    return;
  }
  if (report.modes.length > 0) process.stdout.write(`${modesLine(report.summary)}\n`);
  process.stdout.write(`${ratioLine(report.summary)}\n`);
}

async function measure(opts: Options): Promise<Report> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark drives the test bed and needs root');
  const distEntry = opts.dist ? join(resolve(opts.dist), 'index.js') : DIST_ENTRY;
  if (!existsSync(distEntry)) throw new Error(`${distEntry} is missing: run npm run build first`);
  const withPodman = opts.methods.some((m) => m === 'podman' || m === 'podman-uncompressed');
  const bed = new BenchBed(opts, join(ROOT, 'test/testbed'));
  const distCopy = mkdtempSync(join(tmpdir(), 'bench-dist-'));
  cpSync(dirname(distEntry), distCopy, { recursive: true });
  const ctx: BenchContext = { bed, opts, root: ROOT, actionEntry: join(distCopy, 'index.js') };
  const distSha256 = createHash('sha256').update(readFileSync(ctx.actionEntry)).digest('hex');
  log(`running a copy of ${distEntry} (sha256 ${distSha256.slice(0, 16)}) from ${distCopy}`);
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    log('interrupted: cleaning up');
    void bed.down().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0]!.toFixed(2);
  const loadSamples: Report['machine']['loadSamples'] = [];
  const sampleLoad = () =>
    loadSamples.push({ at: new Date().toISOString(), load1: Number(loadavg()[0]!.toFixed(2)) });
  sampleLoad();
  const sampler = setInterval(sampleLoad, 30_000);
  sampler.unref();
  const runs: MigrationRun[] = [];
  const floors: FloorRun[] = [];
  const modesRuns: ModesRun[] = [];
  const transportRuns: TransportRun[] = [];
  let probeDir: string | undefined;
  let pipeMaxBefore: string | undefined;
  try {
    await bed.up();
    if (withPodman) await preparePodman(ctx);
    await buildWorkloadImage(ctx);
    await copyImage(ctx, IMAGE, withPodman);
    await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
    const ver = await versions(ctx, withPodman);
    if (opts.transport) probeDir = await buildProbe(ctx);
    // CRIU's page server asks for 4 MiB pipes; the bed's hosts share this kernel's limit (1 MiB here).
    if (opts.methods.includes('action-lazy')) pipeMaxBefore = await raisePipeMax(ctx);
    const ways = opts.methods.map((m) => counterMigration(MIGRATIONS[m]));
    const clean = () => Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]).catch(() => {});
    for (const size of opts.sizes) {
      for (let rep = 1; rep <= opts.reps; rep++) {
        // Each way goes first, second and third once every three repetitions.
        const order = ways.map((_, i) => ways[(i + rep - 1) % ways.length]!);
        for (const [position, way] of order.entries()) {
          try {
            runs.push({ ...(await way.measure(ctx, size, rep)), position: position + 1 });
          } catch (error) {
            log(`${way.name} ${size} MiB rep ${rep} failed: ${(error as Error).message}`);
            runs.push({
              method: MIGRATIONS[way.name as keyof typeof MIGRATIONS].way,
              sizeMiB: size,
              rep,
              error: (error as Error).message,
            });
            await clean();
          }
        }
        if (opts.floor) {
          try {
            floors.push(await floor.measure(ctx, size, rep));
          } catch (error) {
            log(`floor ${size} MiB rep ${rep} failed: ${(error as Error).message}`);
            await clean();
          }
        }
        if (opts.modes) {
          try {
            modesRuns.push(await modes.measure(ctx, size, rep));
          } catch (error) {
            log(`modes ${size} MiB rep ${rep} failed: ${(error as Error).message}`);
            modesRuns.push({ sizeMiB: size, rep, error: (error as Error).message });
            await clean();
          }
        }
      }
    }
    if (probeDir) {
      const way = transport(probeDir);
      for (let rep = 1; rep <= opts.reps; rep++) transportRuns.push(...(await way.measure(ctx, 0, rep)));
    }
    if (opts.redis) {
      for (let rep = 1; rep <= opts.redisReps; rep++) {
        for (const m of opts.methods) {
          try {
            runs.push(await redis(MIGRATIONS[m]).measure(ctx, opts.redisMiB, rep));
          } catch (error) {
            log(`redis ${m} rep ${rep} failed: ${(error as Error).message}`);
            runs.push({
              method: m,
              workload: 'redis',
              sizeMiB: opts.redisMiB,
              rep,
              error: (error as Error).message,
            });
            await clean();
          }
        }
      }
    }
    clearInterval(sampler);
    sampleLoad();
    const summary = summarise(runs, floors, transportRuns, modesRuns, opts.sizes);
    const report: Report = {
      schema: 2,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        memGiB: Math.round(totalmem() / 1024 ** 3),
        kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
        loadStart,
        loadEnd: loadavg()[0]!.toFixed(2),
        loadSamples,
      },
      versions: ver,
      dist: { sha256: distSha256, changedDuringRun: distSha(distEntry) !== distSha256 },
      settings: {
        sizes: opts.sizes,
        reps: opts.reps,
        quick: opts.quick,
        methods: opts.methods,
        pattern: opts.pattern,
        floor: opts.floor,
        transport: opts.transport,
        modes: opts.modes,
        redis: opts.redis,
        redisMiB: opts.redisMiB,
        redisReps: opts.redisReps,
        lazy: opts.lazy,
        tick: TICK,
        transportBytes: opts.transportBytes,
        out: relative(ROOT, resolve(ROOT, opts.out)),
        testbed: { state: opts.state, host1: bed.host1, host2: bed.host2 },
      },
      summary,
      targets: evaluateTargets(summary, opts.sizes),
      notes: [],
      runs,
      floors,
      transport: transportRuns,
      modes: modesRuns,
    };
    report.notes = notes(report, runs);
    return report;
  } finally {
    clearInterval(sampler);
    if (pipeMaxBefore !== undefined)
      await bed.on(bed.host1, `echo ${pipeMaxBefore} >/proc/sys/fs/pipe-max-size`).catch(() => {});
    if (probeDir) rmSync(probeDir, { recursive: true, force: true });
    rmSync(distCopy, { recursive: true, force: true });
    await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]).catch(() => {});
    await bed.down();
  }
}

const PAGE_PIPE_BYTES = 4 * 1024 * 1024;

/** Raises fs.pipe-max-size to CRIU's page pipe size when it is lower; the value to put back, if changed. */
async function raisePipeMax(ctx: BenchContext): Promise<string | undefined> {
  const now = (await ctx.bed.must(ctx.bed.host1, 'cat /proc/sys/fs/pipe-max-size')).trim();
  if (!/^\d+$/.test(now) || Number(now) >= PAGE_PIPE_BYTES) return undefined;
  await ctx.bed.must(ctx.bed.host1, `echo ${PAGE_PIPE_BYTES} >/proc/sys/fs/pipe-max-size`);
  log(`fs.pipe-max-size raised from ${now} to ${PAGE_PIPE_BYTES} for the lazy runs`);
  return now;
}

function distSha(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts.help) {
    process.stdout.write(USAGE);
    return;
  }
  const out = resolve(ROOT, opts.out);
  if (opts.unit) {
    if (process.getuid?.() !== 0) throw new Error('the benchmark drives the test bed and needs root');
    const distEntry = opts.dist ? join(resolve(opts.dist), 'index.js') : DIST_ENTRY;
    if (!existsSync(distEntry)) throw new Error(`${distEntry} is missing: run npm run build first`);
    await unitSection(opts, ROOT, distEntry, out);
    return;
  }
  if (opts.render) {
    const report = JSON.parse(readFileSync(resolve(ROOT, opts.render), 'utf8')) as Report;
    if (report.schema !== 2)
      throw new Error(`${opts.render}: results of schema ${report.schema}; this bench renders schema 2`);
    // Summaries and targets are derived again from the raw runs.
    report.summary = summarise(
      report.runs,
      report.floors,
      report.transport,
      report.modes,
      report.settings.sizes,
    );
    report.targets = evaluateTargets(report.summary, report.settings.sizes);
    writeResults(report, out);
    finish(report);
    return;
  }
  const report = await measure(opts);
  writeResults(report, out);
  finish(report);
}

main().catch((error: unknown) => {
  log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
