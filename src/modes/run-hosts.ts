import type {
  CheckpointSettings,
  DrillSettings,
  HostLocation,
  MigrateSettings,
  RestoreSettings,
} from '../settings.js';
import type { Side } from '../state/journal.js';

/** The settings of the modes that change hosts and keep a journal. */
export type JournalledSettings = MigrateSettings | CheckpointSettings | RestoreSettings | DrillSettings;

/**
 * Which hosts a mode's run touches and what it keeps on each. The main step's
 * lifecycle (session.ts) and the post step read this one description, so they
 * lock, journal and settle on the same hosts.
 */
export interface RunHosts {
  /** The journal's source side: the container's host, or the store a checkpoint is read from. */
  source: { role: 'source' | 'store'; location: HostLocation };
  /** The journal's target side: where the container goes, or the store a checkpoint is written to. */
  target: { role: 'target' | 'store'; location: HostLocation };
  /** Where the login must be root (CRIU, runc and Docker's data need it). */
  root: readonly Side[];
  /** Where the container's lock is taken. */
  lock: readonly Side[];
  /** Where the journal is written and read. */
  journal: readonly Side[];
  /** The side whose Docker names the container: the lock and journal key is its name there. */
  keyedOn: Side;
  /** One connection serves both sides when they are the same host. */
  shareSameHost: boolean;
}

export function runHostsOf(settings: JournalledSettings): RunHosts {
  switch (settings.mode) {
    case 'migrate':
      return {
        source: { role: 'source', location: settings.source },
        target: { role: 'target', location: settings.target },
        root: ['source', 'target'],
        lock: ['source', 'target'],
        journal: ['source', 'target'],
        keyedOn: 'source',
        shareSameHost: false,
      };
    // A store host is shared by many hosts' runs: checkpoint mode keeps its lock and journal on the source.
    case 'checkpoint':
      return {
        source: { role: 'source', location: settings.source },
        target: { role: 'store', location: settings.store.host },
        root: ['source'],
        lock: ['source'],
        journal: ['source'],
        keyedOn: 'source',
        shareSameHost: true,
      };
    case 'restore':
    case 'drill':
      return {
        source: { role: 'store', location: settings.store.host },
        target: { role: 'target', location: settings.target },
        root: ['target'],
        lock: ['target'],
        journal: ['source', 'target'],
        keyedOn: 'target',
        shareSameHost: false,
      };
  }
}

/** Whether two locations name the same host and login. */
export function sameLocation(a: HostLocation, b: HostLocation): boolean {
  if (a.kind === 'local' || b.kind === 'local') return a.kind === b.kind;
  return a.spec.host === b.spec.host && a.spec.port === b.spec.port && a.spec.user === b.spec.user;
}
