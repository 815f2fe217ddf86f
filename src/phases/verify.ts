import type { ContainerInspect } from '../engine/docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import type { VerifySettings } from '../settings.js';
import type { RunContext } from './context.js';
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
  targetProcesses: readonly string[] | undefined,
): string[] {
  if (!restored) return ['the container is gone'];
  const problems: string[] = [];
  if (!restored.State.Running) problems.push(`state is ${restored.State.Status}, not running`);
  if (restored.State.Restarting) problems.push('it is restarting');
  if ((restored.RestartCount ?? 0) > 0) problems.push(`it restarted ${restored.RestartCount} time(s)`);
  // docker top lists by host PID, which restored processes do not keep: look for it anywhere.
  if (sourceInit !== undefined && targetProcesses !== undefined && !targetProcesses.includes(sourceInit)) {
    problems.push(
      `the source's first process "${sourceInit}" is not among its processes (${targetProcesses.join(', ') || 'none'})`,
    );
  }
  return problems;
}

/**
 * Checks the restored container while the source is still frozen, so a
 * failure can still fall back to the source: it must stay running, never
 * restarted, with the source's first process, for the whole stability window,
 * and show the operator's log pattern within verify-timeout.
 */
export async function verify(
  ctx: RunContext<VerifySettings>,
  staged: Pick<StageResult, 'targetContainerId'>,
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
  const stableUntil = started + ctx.settings.verifyStableSeconds * 1000;
  const patternDeadline = started + ctx.settings.verifyTimeoutSeconds * 1000;
  let patternSeenAfterMs: number | undefined;
  for (;;) {
    ctx.signal.throwIfAborted();
    const restored = await ctx.targetDocker.inspectContainer(staged.targetContainerId, 'verify');
    const targetProcesses = restored?.State.Running
      ? await ctx.targetDocker.processes(staged.targetContainerId, 'verify')
      : undefined;
    const problems = restoredProblems(restored, sourceInit, targetProcesses);
    if (problems.length > 0) {
      const after = Math.round(ctx.clock() - started);
      const logs = await ctx.targetDocker.logs(staged.targetContainerId, 'verify').catch(() => '');
      fail(
        `the restored container is not healthy ${after} ms after the restore: ${problems.join('; ')}`,
        logs.split('\n').slice(-10).join('\n'),
      );
    }
    if (pattern && patternSeenAfterMs === undefined) {
      const logs = await ctx.targetDocker.logs(staged.targetContainerId, 'verify');
      if (logMatches(logs, pattern)) {
        patternSeenAfterMs = Math.round(ctx.clock() - started);
        ctx.log.info(`verify: /${pattern.source}/ seen in the target's logs after ${patternSeenAfterMs} ms`);
      } else if (ctx.clock() >= patternDeadline) {
        fail(
          `/${pattern.source}/ did not appear in the target's logs within ${ctx.settings.verifyTimeoutSeconds} s`,
          logs.split('\n').slice(-10).join('\n'),
        );
      }
    }
    const patternDone = !pattern || patternSeenAfterMs !== undefined;
    if (patternDone && ctx.clock() >= stableUntil) {
      ctx.log.info(
        `verify: running, not restarted, same first process for ${Math.round(ctx.clock() - started)} ms`,
      );
      return patternSeenAfterMs === undefined ? {} : { patternSeenAfterMs };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
