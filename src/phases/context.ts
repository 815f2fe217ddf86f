import type { DockerCli } from '../docker/docker-cli.js';
import type { Host } from '../host/host.js';
import type { MigrationJournal } from '../migration-state.js';
import type { PhaseTimer } from '../report/timings.js';
import type { Settings } from '../settings.js';

/** The part of @actions/core the phases log through; passed in, never imported. */
export interface Logger {
  info(message: string): void;
  warning(message: string): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** Everything a phase of one migration works with. */
export interface MigrationContext {
  settings: Settings;
  source: Host;
  target: Host;
  sourceDocker: DockerCli;
  targetDocker: DockerCli;
  log: Logger;
  journal: MigrationJournal;
  timer: PhaseTimer;
  /** Monotonic milliseconds. */
  clock: () => number;
  /** Throws TIMEOUT once the run's time budget is spent; called between steps. */
  checkDeadline(step: string): void;
}
