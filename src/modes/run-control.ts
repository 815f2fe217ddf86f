import { setMaxListeners } from 'node:events';
import { asMigrationError, inStep, MigrationError, withRemedy } from '../errors.js';
import type { RunStatus } from '../report/metadata.js';
import type { EarlyRun } from '../report/summary.js';
import type { Runtime } from '../runtime.js';
import { describeLocation, type HostLocation, MODES, type Mode } from '../settings.js';
import { archiveEverywhere } from '../state/guard.js';
import { isCommitted, isUnfinished, type Journal, type Side } from '../state/journal.js';
import { type RecoveryHosts, type RecoveryLog, recover } from '../state/recovery.js';

/** Failures met before anything was touched: the run is refused, not failed. */
export const REFUSALS: ReadonlySet<string> = new Set(['MIGRATION_IN_PROGRESS', 'NOT_ROOT']);

/**
 * Codes of the failures that stop a run before its mode has touched anything:
 * the inputs, connecting and logging in, then the refusals above. An error
 * with another code that escapes a mode may have come after changes.
 */
const BEFORE_ANY_CHANGE: ReadonlySet<string> = new Set([
  ...REFUSALS,
  'INPUT_INVALID',
  'SSH_KEY_MISSING',
  'HOST_KEY_UNKNOWN',
  'HOST_KEY_MISMATCH',
  'HOST_KEY_UNVERIFIED',
  'SSH_UNREACHABLE',
  'SSH_TIMEOUT',
  'SSH_AUTH_FAILED',
  'SUDO_REFUSED',
]);

/** How a run that ended before its mode reported is called: refused when nothing was touched. */
export function earlyOutcome(error: { code: string; step?: string }): 'refused' | 'failed' {
  return BEFORE_ANY_CHANGE.has(error.code) || error.step === 'connect' || error.step === 'lock'
    ? 'refused'
    : 'failed';
}

/** The settings an early failure's summary names; every mode's settings have this shape. */
export interface EarlySettings {
  mode: Mode;
  container: string;
  source: HostLocation;
  target?: HostLocation;
  store?: { host: HostLocation };
}

/**
 * What the summary of a run that stopped before its mode reported can say: the
 * mode, the outcome and the hosts the inputs named. Without settings (the inputs
 * did not parse) the raw mode input may still name the mode.
 */
export function earlyRun(
  settings: EarlySettings | undefined,
  failure: { code: string; step?: string },
  rawMode: string,
): EarlyRun {
  const outcome = earlyOutcome(failure);
  if (!settings) {
    const mode = rawMode.trim() || 'migrate';
    return { outcome, ...(isMode(mode) ? { mode } : {}) };
  }
  return {
    mode: settings.mode,
    outcome,
    container: settings.container,
    source: describeLocation(settings.source),
    ...(settings.target ? { target: describeLocation(settings.target) } : {}),
    ...(settings.store ? { store: describeLocation(settings.store.host) } : {}),
  };
}

function isMode(value: string): value is Mode {
  return (MODES as readonly string[]).includes(value);
}

/** A run's one abort signal: its timeout (a hard limit) and the runner's cancellation. */
export interface RunControl {
  signal: AbortSignal;
  /** Stops the timer and the signal handlers. */
  close(): void;
}

export function startRunControl(timeoutMinutes: number, runtime: Runtime): RunControl {
  const controller = new AbortController();
  // Every command in flight listens to it; preflight alone runs dozens at once.
  setMaxListeners(0, controller.signal);
  const deadline = setTimeout(
    () =>
      controller.abort(
        new MigrationError('TIMEOUT', `the run took longer than timeout (${timeoutMinutes} min)`, {
          remedy: 'raise the timeout input, or look at the phase timings for the slow step',
        }),
      ),
    timeoutMinutes * 60_000,
  );
  deadline.unref();
  const stopListening = runtime.onCancel((signal) => {
    if (controller.signal.aborted) return;
    runtime.log.warning(
      `received ${signal}: cancelling; whatever runs on the hosts is stopped and the journal settled`,
    );
    controller.abort(
      new MigrationError('CANCELLED', `the run was cancelled (${signal})`, {
        remedy: 'nothing to do: what the run had changed was put back; the summary says what',
      }),
    );
  });
  return {
    signal: controller.signal,
    close() {
      clearTimeout(deadline);
      stopListening();
    },
  };
}

/**
 * The error a failed step reports: a cancellation or timeout is reported as
 * such (with what it broke as detail), and every error names its step.
 */
export function failureOf(
  error: unknown,
  signal: AbortSignal,
  step: string,
  code: MigrationError['code'],
  remedy: string,
): MigrationError {
  let caught = asMigrationError(error, code);
  if (signal.aborted && signal.reason instanceof MigrationError && caught !== signal.reason) {
    const reason = signal.reason;
    caught = new MigrationError(reason.code, reason.message, {
      step: caught.step ?? step,
      host: caught.host,
      detail: caught.describe(),
      remedy: reason.remedy,
      cause: caught,
    });
  }
  return withRemedy(inStep(caught, step), remedy);
}

/**
 * After the work of a run: roll the journal forward past its commit point,
 * else back; close it (kept open when something could not be done, so the
 * next run finishes it) and archive it when closed.
 */
export async function settleRun(
  journal: Journal,
  hosts: RecoveryHosts,
  log: RecoveryLog & { group<T>(name: string, fn: () => Promise<T>): Promise<T> },
  failure: MigrationError | undefined,
  sides?: readonly Side[],
): Promise<{ status: RunStatus; problems: string[] }> {
  const record = journal.record;
  const committed = isCommitted(record);
  const outcome = await log.group(committed ? 'Finish' : 'Rollback', () => recover(record, hosts, log));
  let status: RunStatus;
  if (committed) {
    status = 'succeeded';
    await journal.finish(outcome.problems.length === 0 ? 'done' : 'committed').catch(() => {});
    for (const problem of outcome.problems) log.warning(`left to clean up: ${problem}`);
  } else {
    status = outcome.problems.length > 0 ? 'failed' : record.entries.length > 0 ? 'rolled-back' : 'refused';
    const error = failure ? `${failure.code}: ${failure.message}` : undefined;
    await journal
      .finish(outcome.problems.length === 0 ? 'rolled-back' : 'running', { error })
      .catch(() => {});
  }
  if (!isUnfinished(record)) await archiveEverywhere(hosts, record, log, sides);
  return { status, problems: outcome.problems };
}
