/**
 * Podman's own migration: checkpoint --export, copy through the runner, restore --import
 * (scripts/bench/podman-procedure.sh), in its default configuration (zstd) and with
 * `--compress none` (the memory does not compress; its best fair configuration may be that one).
 */
import type { MigrationWay } from '../report.js';
import { runScript } from './scripted.js';
import { type Migration, type MoveResult, stepsOf } from './way.js';

function podmanWay(way: MigrationWay, compress: 'default' | 'none'): Migration {
  return {
    way,
    runtime: 'podman',
    async move(ctx, spec): Promise<MoveResult> {
      const { kv, ms } = await runScript(ctx, 'podman-procedure.sh', spec, {
        BENCH_PODMAN_COMPRESS: compress,
      });
      return {
        totalMs: Math.round(ms),
        bytes: kv['bytes.copy'],
        runnerRssKb: kv.runner_rss_kb,
        checkpointBytes: kv.checkpoint_bytes,
        stepsMs: stepsOf(kv),
      };
    },
  };
}

export const podman = podmanWay('podman', 'default');
export const podmanUncompressed = podmanWay('podman-uncompressed', 'none');
