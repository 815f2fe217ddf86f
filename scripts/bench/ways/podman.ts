/** Podman's own migration: checkpoint --export, copy through the runner, restore --import (scripts/bench/podman-procedure.sh). */
import { runScript } from './scripted.js';
import { type Migration, type MoveResult, stepsOf } from './way.js';

export const podman: Migration = {
  way: 'podman',
  runtime: 'podman',
  async move(ctx, spec): Promise<MoveResult> {
    const { kv, ms } = await runScript(ctx, 'podman-procedure.sh', spec);
    return {
      totalMs: Math.round(ms),
      bytes: kv['bytes.copy'],
      runnerRssKb: kv.runner_rss_kb,
      checkpointBytes: kv.checkpoint_bytes,
      stepsMs: stepsOf(kv),
    };
  },
};
