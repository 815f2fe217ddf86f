/** npm run bench -- --unit: the compose unit section, on the bench bed, into unit.json / unit.md. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BenchBed, log } from './bed.js';
import type { Options } from './options.js';
import { type UnitResults, unitMarkdown } from './render/unit-markdown.js';
import { summariseUnit, UNIT_WAYS, type UnitRun } from './unit-stats.js';
import { buildWorkloadImage, copyImage } from './ways/images.js';
import { cleanUnit, measureUnit, UNIT_PROJECT, UNIT_SERVICES } from './ways/unit.js';
import { type BenchContext, IMAGE, TICK } from './ways/way.js';

const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

export async function unitSection(
  opts: Options,
  root: string,
  distEntry: string,
  out: string,
): Promise<void> {
  const bed = new BenchBed(opts, join(root, 'test/testbed'));
  const distCopy = mkdtempSync(join(tmpdir(), 'bench-dist-'));
  cpSync(dirname(distEntry), distCopy, { recursive: true });
  const ctx: BenchContext = { bed, opts, root, actionEntry: join(distCopy, 'index.js') };
  const sha256 = createHash('sha256').update(readFileSync(ctx.actionEntry)).digest('hex');
  const startedAt = new Date().toISOString();
  const uptimeStart = uptime();
  const loadStart = loadavg()[0]!.toFixed(2);
  log(`unit section: ${uptimeStart}; dist sha256 ${sha256.slice(0, 16)}`);
  const runs: UnitRun[] = [];
  let versions: Record<string, string> = {};
  try {
    await bed.up();
    await buildWorkloadImage(ctx);
    await copyImage(ctx, IMAGE, false);
    const v = await bed.must(
      bed.host1,
      `docker version --format '{{.Server.Version}}'; docker-compose version --short; dpkg-query -W -f '\${Version}\\n' runc criu`,
    );
    const [docker = '?', compose = '?', runc = '?', criu = '?'] = v.trim().split('\n');
    versions = { docker, compose, runc, criu, node: process.version };
    for (let rep = 1; rep <= opts.reps; rep++) {
      // Each way goes first every other repetition.
      const order = rep % 2 === 1 ? [...UNIT_WAYS] : [...UNIT_WAYS].reverse();
      for (const [position, way] of order.entries()) {
        try {
          runs.push({ ...(await measureUnit(ctx, way, opts.unitMiB, rep)), position: position + 1 });
        } catch (error) {
          log(`unit section, ${way}, rep ${rep} failed: ${(error as Error).message}`);
          runs.push({
            way,
            rep,
            sizeMiB: opts.unitMiB,
            position: position + 1,
            error: (error as Error).message,
          });
          await cleanUnit(ctx).catch(() => {});
        }
      }
    }
  } finally {
    rmSync(distCopy, { recursive: true, force: true });
    await cleanUnit(ctx).catch(() => {});
    await bed.down();
  }
  const results: UnitResults = {
    schema: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      loadStart,
      loadEnd: loadavg()[0]!.toFixed(2),
      uptimeStart,
      uptimeEnd: uptime(),
    },
    versions,
    dist: { sha256 },
    settings: {
      sizeMiB: opts.unitMiB,
      reps: opts.reps,
      tick: TICK,
      pattern: opts.pattern,
      project: UNIT_PROJECT,
      services: UNIT_SERVICES.map((s) => `${UNIT_PROJECT}-${s}-1`),
    },
    summary: summariseUnit(runs),
    runs,
    notes: [
      "Freezes are the workloads' own: per container, the largest gap between consecutive ticks (source log, then target log, deduplicated by line number) that overlaps the move's window. Total frozen is the sum over the two containers; longest is the larger of the two; \"project not whole for\" runs from the first container's last tick before its freeze to the last container's first tick after it.",
      "The action's view beside it: for the unit, each member's downtimeMs from the unit output (members freeze together); one at a time, timings.downtimeMs from each run's metadata.",
      `One at a time, the project network ${UNIT_PROJECT}_default is created on host 2 before the two runs with host 1's subnet and gateway (a single container's run does not create it); the unit run creates it itself, inside its own run.`,
      'Memory by content: each counter prints the md5 of its whole value on request, before the move on host 1 and after it on host 2; a check that could not be made counts as not checked.',
      `The ways alternate which goes first per repetition; the project is started again from scratch for every run. Image ${IMAGE} is on both hosts before the runs.`,
    ],
  };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'unit.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = unitMarkdown(results);
  writeFileSync(join(out, 'unit.md'), md);
  process.stdout.write(`${md}\n`);
  log(`results: ${join(out, 'unit.md')}, unit.json`);
}
