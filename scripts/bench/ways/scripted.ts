/** Runs one of the shell procedures (scripts/bench/*-procedure.sh) that move a container from host 1 to host 2. */
import { runProcess } from '../../../test/e2e/process.js';
import { type BenchContext, benchScript, type ContainerSpec, keyValues } from './way.js';

export async function runScript(
  ctx: BenchContext,
  script: string,
  spec: ContainerSpec,
  extraEnv: Record<string, string> = {},
): Promise<{ kv: Record<string, number>; ms: number }> {
  const { bed } = ctx;
  const r = await runProcess(['bash', benchScript(ctx, script), bed.host1, bed.host2, spec.name], {
    env: bed.scriptEnv({ BENCH_CREATE_OPTS: spec.createOpts, BENCH_COMMAND: spec.command, ...extraEnv }),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`${script} failed: ${r.stderr.slice(-800)}`);
  return { kv: keyValues(r.stdout), ms: r.ms };
}
