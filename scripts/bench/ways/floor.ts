/** The floor's measured parts on host 1 (scripts/bench/floor.sh): pause, dump, staged restore. */
import { containerdTmpScript, parseContainerdTmp } from '../../../src/engine/docker/staged-pages.js';
import { runProcess } from '../../../test/e2e/process.js';
import { parseCounter } from '../../../test/e2e/testbed.js';
import type { FloorRun } from '../report.js';
import { analyseDowntime } from '../stats.js';
import {
  type BenchContext,
  benchScript,
  bothLogs,
  cleanHost,
  counterSpec,
  keyValues,
  log,
  startCounter,
  type Way,
} from './way.js';

/** containerd's physical TMPDIR on a host, found the way the action finds it. */
export async function containerdTmp(ctx: BenchContext, host: string): Promise<string> {
  const r = await ctx.bed.on(host, containerdTmpScript());
  const found = parseContainerdTmp(r.stdout, r.code);
  if (!found.found) throw new Error(`${host}: containerd's TMPDIR not found: ${found.reason}`);
  return found.dir;
}

/** Runs floor.sh on NAME (left paused) into NAME-restored; its "key value" results. */
export async function runFloorScript(
  ctx: BenchContext,
  name: string,
  createOpts: string,
  command: string,
  image: string,
): Promise<Record<string, number>> {
  const { bed } = ctx;
  const r = await runProcess(['bash', benchScript(ctx, 'floor.sh'), bed.host1, name, `${name}-restored`], {
    env: bed.scriptEnv({
      BENCH_CREATE_OPTS: createOpts,
      BENCH_COMMAND: command,
      BENCH_IMAGE: image,
      BENCH_CTRD_TMP: await containerdTmp(ctx, bed.host1),
    }),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`floor.sh failed: ${r.stderr.slice(-800)}`);
  const kv = keyValues(r.stdout);
  if (!(kv.staged_pages && kv.staged_pages > 0)) throw new Error('floor.sh staged no page images');
  return kv;
}

export const floor: Way<FloorRun> = {
  name: 'floor',
  async measure(ctx, size, rep) {
    const { bed } = ctx;
    const spec = counterSpec(ctx, `bench-floor-${size}m-${rep}`, size, 'docker');
    await cleanHost(ctx, bed.host1);
    await startCounter(ctx, 'docker', bed.host1, spec, size);
    log(`floor ${size} MiB rep ${rep}: pause, dump, staged restore on host 1`);
    const kv = await runFloorScript(ctx, spec.name, spec.createOpts, spec.command, spec.image);
    const logs = await bothLogs(
      ctx,
      'docker',
      { host: bed.host1, name: spec.name },
      { host: bed.host1, name: `${spec.name}-restored` },
    );
    const seen = analyseDowntime(parseCounter(logs.sourceText), parseCounter(logs.targetText));
    log(
      `floor ${size} MiB rep ${rep}: pause ${kv.pause_ms} ms, dump ${kv.dump_ms} ms, staged restore ${kv.restore_ms} ms, ${kv.checkpoint_bytes} bytes`,
    );
    await cleanHost(ctx, bed.host1);
    return {
      sizeMiB: size,
      rep,
      pauseMs: kv.pause_ms,
      dumpMs: kv.dump_ms,
      restoreMs: kv.restore_ms,
      restoreCriuMs: kv.restore_criu_ms,
      dumpPageServerMs: kv.dump_page_server_ms,
      checkpointBytes: kv.checkpoint_bytes,
      oneHostDowntimeMs: seen.downtimeMs,
      tickMs: seen.tickMs,
    };
  },
};
