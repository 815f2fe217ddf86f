import type { ContainerEngine } from '../engine/engine.js';
import type { Host } from '../host/host.js';
import type { StreamRoutes } from '../host/stream-routes.js';
import type { PhaseTimer } from '../report/timings.js';
import type { MigrateSettings } from '../settings.js';
import type { Journal } from '../state/journal.js';

/** The part of @actions/core the phases log through; passed in, never imported. */
export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** Everything a phase of one run works with; `S` is as much of the settings as the phase reads. */
export interface RunContext<S = MigrateSettings> {
  settings: S;
  /** Hosts bound to the run's signal: a cancelled or timed-out run kills what they run. */
  source: Host;
  target: Host;
  sourceDocker: ContainerEngine;
  targetDocker: ContainerEngine;
  log: Logger;
  /** Every side effect is written here before it is made. */
  journal: Journal;
  timer: PhaseTimer;
  /** Monotonic milliseconds. */
  clock: () => number;
  /** Aborted when the run is cancelled or its timeout is spent; the reason is the MigrationError to report. */
  signal: AbortSignal;
  /** How streams between the hosts go (host to host or through the runner); absent: through the runner. */
  streams?: StreamRoutes;
}

/** A migration's context: every phase can be handed it. */
export type MigrationContext = RunContext<MigrateSettings>;

/** Settings of a run that writes checkpoint images under its name. */
export interface Named {
  /** With checkpointName, names the run's files on each host (see workDir). */
  container: string;
  checkpointName: string;
  /** Members of a moving compose unit keep their current addresses, static or not. */
  keepAddresses?: boolean;
}
