/** The seed article's manual procedure (scripts/bench/seed-procedure.sh). */
import { runScript } from './scripted.js';
import { type Migration, type MoveResult, stepsOf } from './way.js';

export const seed: Migration = {
  way: 'seed',
  runtime: 'docker',
  async move(ctx, spec): Promise<MoveResult> {
    const { kv, ms } = await runScript(ctx, 'seed-procedure.sh', spec);
    return {
      totalMs: Math.round(ms),
      bytes: (kv['bytes.copy_checkpoint'] ?? 0) + (kv['bytes.copy_fs'] ?? 0),
      runnerRssKb: kv.runner_rss_kb,
      checkpointBytes: kv.checkpoint_bytes,
      stepsMs: stepsOf(kv),
    };
  },
};
