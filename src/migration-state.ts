import type { Host } from './host/host.js';
import { runChecked, shellQuote } from './host/shell.js';

/**
 * Each migration keeps a small record on both hosts, so a later run (or an
 * operator) can find a migration that stopped half way: which container, which
 * phase, whether the source is frozen. Memory images live beside it only
 * while the migration runs.
 */
export const STATE_ROOT = '/var/lib/criu-migrate';

export function stateDir(checkpointName: string): string {
  return `${STATE_ROOT}/${checkpointName}`;
}

export function imagesDir(checkpointName: string): string {
  return `${stateDir(checkpointName)}/images`;
}

export function criuWorkDir(checkpointName: string): string {
  return `${stateDir(checkpointName)}/work`;
}

export type MigrationStatus = 'running' | 'frozen' | 'restored' | 'done' | 'rolled-back' | 'failed';

export interface MigrationState {
  schema: 1;
  checkpointName: string;
  role: 'source' | 'target';
  status: MigrationStatus;
  phase: string;
  container: string;
  sourceContainerId?: string;
  targetContainerId?: string;
  /** The source's restart policy before the migration set it to "no". */
  sourceRestartPolicy?: string;
  peer: string;
  updatedAt: string;
  error?: string;
}

export type StatePatch = Partial<Omit<MigrationState, 'schema' | 'role' | 'checkpointName' | 'updatedAt'>>;

export class MigrationJournal {
  private readonly states = new Map<Host, MigrationState>();

  constructor(
    private readonly checkpointName: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Merges the patch into the host's record and writes it atomically. */
  async record(host: Host, role: 'source' | 'target', patch: StatePatch): Promise<void> {
    const previous = this.states.get(host);
    const state: MigrationState = {
      schema: 1,
      checkpointName: this.checkpointName,
      role,
      status: 'running',
      phase: 'connect',
      container: '',
      peer: '',
      ...previous,
      ...patch,
      updatedAt: this.clock().toISOString(),
    };
    this.states.set(host, state);
    const dir = stateDir(this.checkpointName);
    await runChecked(
      host,
      `mkdir -p ${shellQuote([dir])} && cat >${shellQuote([`${dir}/state.json.new`])} && mv ${shellQuote([`${dir}/state.json.new`, `${dir}/state.json`])}`,
      {
        step: patch.phase ?? state.phase,
        what: 'writing the migration record',
        options: { input: `${JSON.stringify(state, null, 2)}\n` },
      },
    );
  }
}
