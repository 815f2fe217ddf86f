/**
 * The checkpoint and restore modes on host 1 alone: the dump itself
 * (scripts/bench/dump.sh) before and after mode checkpoint into a store on
 * host 1, then the container is removed and mode restore brings it back.
 */
import { runProcess } from '../../../test/e2e/process.js';
import { type CounterLine, parseCounter } from '../../../test/e2e/testbed.js';
import { sleep } from '../bed.js';
import type { ModesRun } from '../report.js';
import { analyseDowntime, gapWithin } from '../stats.js';
import { criuRestoreMs, runMeasuredAction } from './action.js';
import {
  type BenchContext,
  benchScript,
  cleanHost,
  counterSpec,
  keyValues,
  log,
  logsCommand,
  startCounter,
  type Way,
} from './way.js';

/** Where the modes section keeps its checkpoints, on host 1 (cleanHost removes it). */
const MODES_STORE = '/var/lib/criu-migrate/bench-store';

async function lines(ctx: BenchContext, host: string, name: string): Promise<CounterLine[]> {
  return parseCounter((await ctx.bed.on(host, logsCommand('docker', name))).stdout);
}

/**
 * Waits until a container printed `count` lines stamped after this call (not
 * merely past the last one now: see bothLogs on the ticker's backlog); returns all its lines.
 */
async function moreLines(ctx: BenchContext, host: string, name: string, count = 10): Promise<CounterLine[]> {
  const now = Date.now();
  for (let i = 0; i < 240; i++) {
    const all = await lines(ctx, host, name);
    if (all.filter((l) => l.ms > now).length >= count) return all;
    await sleep(250);
  }
  throw new Error(`${name} printed no new lines`);
}

async function referenceDump(ctx: BenchContext, name: string): Promise<Record<string, number>> {
  await ctx.bed.must(ctx.bed.host1, 'sync');
  const r = await runProcess(['bash', benchScript(ctx, 'dump.sh'), ctx.bed.host1, name], {
    env: ctx.bed.scriptEnv(),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`dump.sh failed: ${r.stderr.slice(-800)}`);
  await moreLines(ctx, ctx.bed.host1, name);
  return keyValues(r.stdout);
}

const mean = (values: (number | undefined)[]): number | undefined => {
  const v = values.filter((x): x is number => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
};

export const modes: Way<ModesRun> = {
  name: 'modes',
  async measure(ctx, size, rep) {
    const host = ctx.bed.host1;
    const spec = counterSpec(ctx, `bench-modes-${size}m-${rep}`, size, 'docker');
    const name = spec.name;
    const checkpointName = `${name}-ckpt`;
    await cleanHost(ctx, host);
    await startCounter(ctx, 'docker', host, spec, size);
    const layerMiB = ctx.opts.layerMiB;
    if (layerMiB > 0) {
      // Random, so no compression flatters it; written before the dumps, so all runs see the same layer.
      log(`modes ${size} MiB rep ${rep}: ${layerMiB} MiB of random data into the writable layer`);
      await ctx.bed.must(
        host,
        `docker exec ${name} sh -c 'head -c ${layerMiB * 1024 * 1024} /dev/urandom >/bench-layer' && sync`,
        { timeoutMs: 600_000 },
      );
    }
    log(`modes ${size} MiB rep ${rep}: the dump itself (dump.sh)`);
    const dumps = [await referenceDump(ctx, name)];
    log(`modes ${size} MiB rep ${rep}: mode checkpoint into ${host}:${MODES_STORE}`);
    await ctx.bed.must(host, 'sync');
    const fromMs = Date.now();
    const checkpoint = await runMeasuredAction(ctx, {
      mode: 'checkpoint',
      container: name,
      source: host,
      'store-host': host,
      'store-path': MODES_STORE,
      'checkpoint-name': checkpointName,
    });
    const toMs = Date.now();
    // dockerd's own record of the freeze: its pause and unpause events.
    const events = await ctx.bed.on(
      host,
      `docker events --since ${(fromMs / 1000).toFixed(3)} --until ${(toMs / 1000 + 1).toFixed(3)} --filter container=${name} --filter event=pause --filter event=unpause --format '{{.TimeNano}} {{.Action}}'`,
      { timeoutMs: 30_000 },
    );
    const eventAt = (action: string) => {
      const m = new RegExp(`^(\\d+) ${action}$`, 'm').exec(events.stdout);
      return m ? Number(BigInt(m[1]!) / 1000n) / 1000 : undefined;
    };
    const paused = eventAt('pause');
    const unpaused = eventAt('unpause');
    const afterCheckpoint = await moreLines(ctx, host, name);
    const freeze = gapWithin(afterCheckpoint, fromMs, toMs);
    log(`modes ${size} MiB rep ${rep}: the dump itself again`);
    dumps.push(await referenceDump(ctx, name));
    await ctx.bed.must(host, `docker rm -f ${name} >/dev/null && sync`);

    log(`modes ${size} MiB rep ${rep}: mode restore from ${host}:${MODES_STORE} onto ${host}`);
    const restore = await runMeasuredAction(ctx, {
      mode: 'restore',
      container: name,
      target: host,
      'store-host': host,
      'store-path': MODES_STORE,
      'checkpoint-name': checkpointName,
    });
    const restoreCriu = await criuRestoreMs(ctx, host, restore.run.outputs['target-container-id']);
    const restored = await moreLines(ctx, host, name);
    const first = restored[0];
    const dumpMs = mean(dumps.map((d) => (d.pause_ms ?? Number.NaN) + (d.dump_ms ?? Number.NaN)));
    const frozenMs = Number(checkpoint.run.outputs['frozen-ms']);
    const restorePhase = restore.metadata.timings.phasesMs.restore;
    const result: ModesRun = {
      sizeMiB: size,
      layerMiB,
      rep,
      frozenMs,
      workloadFrozenMs: freeze?.ms,
      eventsFrozenMs:
        paused !== undefined && unpaused !== undefined ? Math.round(unpaused - paused) : undefined,
      pauseMs: mean(dumps.map((d) => d.pause_ms)),
      runcCheckpointMs: mean(dumps.map((d) => d.dump_ms)),
      unpauseMs: mean(dumps.map((d) => d.unpause_ms)),
      dumpMs,
      criuDumpMs: mean(dumps.map((d) => d.criu_dump_ms)),
      dumpBytes: mean(dumps.map((d) => d.checkpoint_bytes)),
      checkpointPhasesMs: { ...checkpoint.metadata.timings.phasesMs },
      checkpointDurationMs: checkpoint.metadata.timings.durationMs,
      checkpointBytes: checkpoint.metadata.checkpoint.bytes,
      restorePhasesMs: { ...restore.metadata.timings.phasesMs },
      restoreDurationMs: restore.metadata.timings.durationMs,
      restoreCriuMs: restoreCriu,
      freezeRatio: dumpMs ? frozenMs / dumpMs : undefined,
      restoreRatio: restorePhase !== undefined && restoreCriu ? restorePhase / restoreCriu : undefined,
      // The restored copy goes on from the checkpoint: the source's token, and a line number
      // no later than the source's first after the freeze (earlier when the ticker's backlog
      // was captured with it); a restart would have a new token and start at 1.
      continued: Boolean(
        first && freeze && first.token === freeze.after.token && first.n > 1 && first.n <= freeze.after.n,
      ),
      tickMs: analyseDowntime(afterCheckpoint, []).tickMs,
    };
    if (!result.continued)
      log(
        `warning: ${name} restored from the store did not continue where it was dumped (first line ${first?.n} ${first?.token}, source's first after the freeze ${freeze?.after.n} ${freeze?.after.token})`,
      );
    log(
      `modes ${size} MiB rep ${rep}: freeze ratio ${result.freezeRatio?.toFixed(2)}, restore ratio ${result.restoreRatio?.toFixed(2)}`,
    );
    await cleanHost(ctx, host);
    return result;
  },
};
