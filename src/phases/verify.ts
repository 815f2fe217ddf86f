import type { ContainerInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import type { MigrationContext } from './context.js';
import type { StageResult } from './stage.js';

export interface VerifyResult {
  patternSeenAfterMs?: number;
}

const POLL_MS = 250;

/** Line by line, so ^ and $ mean what an operator expects of a log line. */
export function logMatches(logs: string, pattern: RegExp): boolean {
  return logs.split('\n').some((line) => pattern.test(line));
}

/** The restored container is running, has not been restarted, and runs the source's first process. */
export function restoredProblems(
  restored: ContainerInspect | undefined,
  sourceInit: string | undefined,
  targetInit: string | undefined,
): string[] {
  if (!restored) return ['the container is gone'];
  const problems: string[] = [];
  if (!restored.State.Running) problems.push(`state is ${restored.State.Status}, not running`);
  if (restored.State.Restarting) problems.push('it is restarting');
  if ((restored.RestartCount ?? 0) > 0) problems.push(`it restarted ${restored.RestartCount} time(s)`);
  if (sourceInit !== undefined && targetInit !== sourceInit) {
    problems.push(`its first process is "${targetInit ?? 'none'}", the source's was "${sourceInit}"`);
  }
  return problems;
}

/**
 * Checks the restored container while the source is still frozen, so a
 * failure can still fall back to the source: running, not restarted, the
 * same process continuing, and the operator's log pattern within the timeout.
 */
export async function verify(
  ctx: MigrationContext,
  staged: StageResult,
  sourceInit: string | undefined,
): Promise<VerifyResult> {
  const started = ctx.clock();
  const fail = (message: string, detail?: string): never => {
    throw new MigrationError('VERIFY_FAILED', message, {
      step: 'verify',
      host: describeHost(ctx.target),
      detail,
      remedy: "the source was resumed; look at the target container's logs from this run and at the pattern",
    });
  };
  const pattern = ctx.settings.verifyLogPattern;
  const deadline = started + ctx.settings.verifyTimeoutSeconds * 1000;
  for (;;) {
    const restored = await ctx.targetDocker.inspectContainer(staged.targetContainerId, 'verify');
    const targetInit = restored?.State.Running
      ? (await ctx.targetDocker.processes(staged.targetContainerId, 'verify'))[0]
      : undefined;
    const problems = restoredProblems(restored, sourceInit, targetInit);
    if (problems.length > 0) fail(`the restored container is not healthy: ${problems.join('; ')}`);
    if (!pattern) return {};
    const logs = await ctx.targetDocker.logs(staged.targetContainerId, 'verify');
    if (logMatches(logs, pattern)) {
      const after = Math.round(ctx.clock() - started);
      ctx.log.info(`verify: /${pattern.source}/ seen in the target's logs after ${after} ms`);
      return { patternSeenAfterMs: after };
    }
    if (ctx.clock() >= deadline) {
      fail(
        `/${pattern.source}/ did not appear in the target's logs within ${ctx.settings.verifyTimeoutSeconds} s`,
        logs.split('\n').slice(-10).join('\n'),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
