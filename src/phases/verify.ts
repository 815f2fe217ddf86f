import type { ContainerInspect } from '../engine/docker/inspect.js';
import { initFirstRows, type ProcessRow } from '../engine/engine.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import type { VerifySettings } from '../settings.js';
import type { RunContext } from './context.js';
import type { StageResult } from './stage.js';

export interface VerifyResult {
  patternSeenAfterMs?: number;
}

const POLL_MS = 250;

/**
 * The container's last log lines for a VERIFY_FAILED detail, which goes into the job log
 * (public on public repositories): only when the operator allowed it; never into the artifact.
 */
export function logTail(logs: string, show: boolean): string {
  if (!show) {
    return "the container's log lines are not shown (verify-show-logs: false): set verify-show-logs: true to print its last 10 lines into the job log";
  }
  return logs.split('\n').slice(-10).join('\n');
}

/** Line by line, so ^ and $ mean what an operator expects of a log line. */
export function logMatches(logs: string, pattern: RegExp): boolean {
  return logs.split('\n').some((line) => pattern.test(line));
}

/**
 * The restored container is running, has not been restarted, its main process
 * is inside it (in its cgroup, where `docker top` looks: a restore can land the
 * process elsewhere, out of Docker's reach), and it runs the source's first process.
 */
export function restoredProblems(
  restored: ContainerInspect | undefined,
  sourceInit: string | undefined,
  table: readonly ProcessRow[] | undefined,
): string[] {
  if (!restored) return ['the container is gone'];
  const problems: string[] = [];
  if (!restored.State.Running) problems.push(`state is ${restored.State.Status}, not running`);
  if (restored.State.Restarting) problems.push('it is restarting');
  if ((restored.RestartCount ?? 0) > 0) problems.push(`it restarted ${restored.RestartCount} time(s)`);
  if (table === undefined) return problems;
  const mainPid = restored.State.Pid;
  if (mainPid !== undefined && mainPid > 0 && !table.some((row) => row.pid === mainPid)) {
    problems.push(
      `its main process (pid ${mainPid}) is not inside the container: the container's cgroup holds ${table.length === 0 ? 'no process' : `only pids ${table.map((row) => row.pid).join(', ')}`}`,
    );
  }
  // docker top lists by host PID, which restored processes do not keep: look for it by command.
  const commands = initFirstRows(table).map((row) => row.args);
  if (sourceInit !== undefined && !commands.includes(sourceInit)) {
    problems.push(
      `the source's first process "${sourceInit}" is not among its processes (${commands.join(', ') || 'none'})`,
    );
  }
  return problems;
}

/** Where a process is, for a report: its /proc/<pid>/cgroup lines, or why they could not be read. */
async function cgroupOf(ctx: RunContext<VerifySettings>, pid: number | undefined): Promise<string> {
  if (pid === undefined || pid <= 0) return '';
  const read = await ctx.target.run(`cat /proc/${pid}/cgroup`, { timeoutMs: 10_000 }).catch(() => undefined);
  if (read?.exitCode !== 0) return '';
  const lines = read.stdout.trim().split('\n');
  // The cgroup2 line ("0::/path") says it all where there is one.
  const unified = lines.filter((line) => line.startsWith('0::'));
  return `/proc/${pid}/cgroup on the target: ${(unified.length > 0 ? unified : lines).join('; ')}`;
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
      remedy: ctx.settings.verifyShowLogs
        ? "the source was resumed; read the restored container's last log lines above and check the pattern"
        : 'the source was resumed; to see why the restored container failed, run again with verify-show-logs: true (prints its last log lines into the job log), and check the pattern',
    });
  };
  const pattern = ctx.settings.verifyLogPattern;
  const stableUntil = started + ctx.settings.verifyStableSeconds * 1000;
  const patternDeadline = started + ctx.settings.verifyTimeoutSeconds * 1000;
  let patternSeenAfterMs: number | undefined;
  for (;;) {
    ctx.signal.throwIfAborted();
    const restored = await ctx.targetDocker.inspectContainer(staged.targetContainerId, 'verify');
    const table = restored?.State.Running
      ? await ctx.targetDocker.processTable(staged.targetContainerId, 'verify')
      : undefined;
    const problems = restoredProblems(restored, sourceInit, table);
    if (problems.length > 0) {
      const after = Math.round(ctx.clock() - started);
      const logs = await ctx.targetDocker.logs(staged.targetContainerId, 'verify').catch(() => '');
      const where = await cgroupOf(ctx, restored?.State.Pid);
      fail(
        `the restored container is not healthy ${after} ms after the restore: ${problems.join('; ')}`,
        [where, logTail(logs, ctx.settings.verifyShowLogs)].filter(Boolean).join('\n'),
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
          logTail(logs, ctx.settings.verifyShowLogs),
        );
      }
    }
    const patternDone = !pattern || patternSeenAfterMs !== undefined;
    if (patternDone && ctx.clock() >= stableUntil) {
      ctx.log.info(
        `verify: running, not restarted, main process inside the container, same first process for ${Math.round(ctx.clock() - started)} ms`,
      );
      return patternSeenAfterMs === undefined ? {} : { patternSeenAfterMs };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
