/** This action: the bundled dist/index.js run as a runner runs it (the e2e harness), default settings. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MigrationMetadata } from '../../../src/report/metadata.js';
import { type ActionRun, runAction } from '../../../test/e2e/run-action.js';
import type { BenchContext, Migration, MoveResult } from './way.js';

/** What `/usr/bin/time -f '%M %U %S'` wrote: peak RSS (KiB) and CPU seconds. */
export const TIME_FORMAT = '%M %U %S';
export function readTime(text: string): { rssKb: number; cpuS: number } {
  const [rss = Number.NaN, user = Number.NaN, sys = Number.NaN] = (text.trim().split('\n').at(-1) ?? '')
    .split(' ')
    .map(Number);
  return { rssKb: rss, cpuS: user + sys };
}

/**
 * The metadata fields the bench reads beyond the typed ones: a codec per
 * stream or for the run, when the action records it.
 */
type Metadata = MigrationMetadata & { checkpoint: MigrationMetadata['checkpoint'] & { codec?: string } };

export function codecOf(metadata: Metadata): string | undefined {
  const perStream = Object.entries(
    metadata.checkpoint.streams as Record<string, { codec?: unknown } | undefined>,
  )
    .filter((entry): entry is [string, { codec: string }] => typeof entry[1]?.codec === 'string')
    .map(([kind, s]) => `${kind} ${s.codec}`);
  if (perStream.length > 0) return perStream.join(', ');
  return metadata.checkpoint.codec;
}

export interface MeasuredActionRun {
  run: ActionRun;
  metadata: Metadata;
  rssKb: number;
  cpuS: number;
}

/** Runs the action with these inputs besides the connection ones; fails unless it succeeded. */
export async function runMeasuredAction(
  ctx: BenchContext,
  inputs: Record<string, string>,
): Promise<MeasuredActionRun> {
  const bed = ctx.bed.testbed;
  const all = {
    'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
    'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
    ...inputs,
  };
  // /usr/bin/time reports the node process's own peak RSS (no shell in between: a shell drops INPUT_SSH-KEY and the like).
  const runnerTemp = mkdtempSync(join(tmpdir(), 'bench-runner-'));
  const run = await runAction(all, {
    runnerTemp,
    command: [
      '/usr/bin/time',
      '-f',
      TIME_FORMAT,
      '-o',
      join(runnerTemp, 'time'),
      process.execPath,
      ctx.actionEntry,
    ],
    timeoutMs: 1_800_000,
  });
  try {
    if (run.exitCode !== 0 || run.outputs.status !== 'succeeded')
      throw new Error(
        `action (mode ${inputs.mode}) ended ${run.outputs.status ?? `with exit ${run.exitCode}`}: ${run.stdout.slice(-1500)}`,
      );
    const metadataPath = run.outputs['metadata-path'];
    if (!metadataPath) throw new Error('the action wrote no metadata-path output');
    const metadata = JSON.parse(readFileSync(metadataPath, 'utf8')) as Metadata;
    const time = readTime(readFileSync(join(run.runnerTemp, 'time'), 'utf8'));
    return { run, metadata, ...time };
  } finally {
    rmSync(run.runnerTemp, { recursive: true, force: true });
  }
}

/** CRIU's own restore time: the last timestamp of the restore.log containerd keeps for a container. */
export async function criuRestoreMs(
  ctx: BenchContext,
  host: string,
  containerId: string | undefined,
): Promise<number | undefined> {
  if (!containerId) return undefined;
  const r = await ctx.bed.on(
    host,
    `tail -n1 /var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/${containerId}/restore.log 2>/dev/null`,
  );
  const m = /^\((\d+)\.(\d{3})/.exec(r.stdout);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : undefined;
}

/** The action's migrate mode with default settings, or with memory: lazy (post-copy) or overlap. */
function actionWay(way: 'action' | 'action-lazy' | 'action-overlap'): Migration {
  const memory = way === 'action-lazy' ? 'lazy' : way === 'action-overlap' ? 'overlap' : undefined;
  return {
    way,
    runtime: 'docker',
    move: (ctx, spec) => moveWithAction(ctx, spec, memory ? { memory } : {}),
  };
}

export const action = actionWay('action');
/** Post-copy: the downtime (as the workload saw it) and, beside it, when the last page arrived. */
export const actionLazy = actionWay('action-lazy');
/** memory: overlap: the pages go to the target's CRIU page server while the source dumps them. */
export const actionOverlap = actionWay('action-overlap');

async function moveWithAction(
  ctx: BenchContext,
  spec: { name: string },
  extra: Record<string, string>,
): Promise<MoveResult> {
  const { run, metadata, rssKb, cpuS } = await runMeasuredAction(ctx, {
    mode: 'migrate',
    container: spec.name,
    source: ctx.bed.host1,
    target: ctx.bed.host2,
    ...extra,
  });
  const criu = metadata.criu;
  const timings = metadata.timings as typeof metadata.timings & { frozenWindowMs?: Record<string, number> };
  const route = metadata.route;
  return {
    ...(route ? { runnerBytes: route.runnerBytes, route: route.taken } : {}),
    ...(timings.lastPageMs !== undefined ? { lastPageMs: timings.lastPageMs } : {}),
    ...(timings.lazyPageBytes !== undefined ? { lazyPageBytes: timings.lazyPageBytes } : {}),
    ...(timings.frozenWindowMs ? { windowMs: { ...timings.frozenWindowMs } } : {}),
    totalMs: Math.round(run.ms),
    bytes: metadata.checkpoint.transferredBytes,
    runnerRssKb: rssKb,
    runnerCpuS: cpuS,
    checkpointBytes: metadata.checkpoint.bytes,
    reportedDowntimeMs: metadata.timings.downtimeMs,
    phasesMs: { ...metadata.timings.phasesMs },
    // CRIU's own frozen time during the dump (stats-dump), the dump without runc's share.
    dumpMs: criu?.frozenTimeUs !== undefined ? criu.frozenTimeUs / 1000 : undefined,
    restoreCriuMs: await criuRestoreMs(
      ctx,
      ctx.bed.host2,
      metadata.container.targetId ?? run.outputs['target-container-id'],
    ),
    codec: codecOf(metadata),
    restorePath: metadata.checkpoint.restorePath,
    criuStats: criu
      ? Object.fromEntries(
          Object.entries(criu).filter((e): e is [string, number] => typeof e[1] === 'number'),
        )
      : undefined,
  };
}
