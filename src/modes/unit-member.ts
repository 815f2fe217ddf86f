import { asMigrationError, type ErrorCode, type MigrationError } from '../errors.js';
import type { Logger } from '../phases/context.js';
import { PhaseTimer } from '../report/timings.js';
import type { UnitReport } from '../report/unit-report.js';
import type { Runtime } from '../runtime.js';
import { prefixed } from './migrate/unit.js';
import type { UnitCoordinator } from './migrate/unit-coordinator.js';
import { failureOf, settleRun } from './run-control.js';
import { type JournalledSettings, runHostsOf } from './run-hosts.js';
import { beginSession, type ModeRun, type Session, SessionCloser } from './session.js';

/** How one member of a unit's checkpoint or restore ended. */
export interface MemberRun<T> {
  member: string;
  status: UnitReport['status'];
  result?: T;
  error?: MigrationError;
  problems: string[];
}

/**
 * One member of a unit run by a one-container mode's work: its own connections, lock and
 * journal (beginSession), its failure told to the unit at once, its journal settled as a
 * one-container run's is. `afterSuccess` runs only once the member's journal is settled.
 */
export async function runUnitMember<S extends JournalledSettings, T>(
  member: { name: string; settings: S; record: ModeRun<S, T>['record'] },
  unit: { coordinator: UnitCoordinator; runtime: Runtime; signal: AbortSignal; started: Date },
  failure: { step: string; code: ErrorCode; remedy: string },
  work: (session: Session<S>, log: Logger) => Promise<T>,
  afterSuccess: (session: Session<S>, result: T, log: Logger) => Promise<void> = async () => {},
): Promise<MemberRun<T>> {
  const { coordinator, runtime, signal, started } = unit;
  const log = prefixed(runtime.log, member.name);
  const closer = new SessionCloser();
  // The runner's saved state holds one journal: the post step reads the members' on the hosts.
  const memberRuntime: Runtime = { ...runtime, log, saveState: () => {} };
  try {
    const clock = () => performance.now();
    const { session } = await beginSession(
      { settings: member.settings, record: member.record },
      { runtime: memberRuntime },
      { signal, timer: new PhaseTimer(), clock, started, startedAt: clock(), closer },
    );
    let result: T | undefined;
    let error: MigrationError | undefined;
    try {
      result = await work(session, log);
    } catch (caught) {
      error = failureOf(caught, signal, failure.step, failure.code, failure.remedy);
      coordinator.fail(member.name, error);
      log.warning(error.describe());
    }
    const settled = await settleRun(
      session.journal,
      session.durable,
      log,
      error,
      runHostsOf(member.settings).journal,
    );
    if (settled.status === 'succeeded' && result !== undefined) await afterSuccess(session, result, log);
    return {
      member: member.name,
      status: settled.status,
      ...(result !== undefined && settled.status === 'succeeded' ? { result } : {}),
      ...(error ? { error } : {}),
      problems: settled.problems.map((problem) => `${member.name}: ${problem}`),
    };
  } catch (caught) {
    const error = asMigrationError(caught, 'COMMAND_FAILED');
    coordinator.fail(member.name, error);
    return { member: member.name, status: 'refused', error, problems: [] };
  } finally {
    await closer.close();
  }
}
