/** Migration phases, in the order a run goes through them. */
export const PHASES = [
  'connect',
  'preflight',
  'volumes',
  'volume-bulk',
  'layer-bulk',
  'stage',
  'checkpoint',
  'transfer',
  'volume-frozen',
  'layer-frozen',
  'prove',
  'restore',
  'lazy-pages',
  'verify',
  'finalize',
  'rollback',
] as const;

export type Phase = (typeof PHASES)[number];

export type PhaseTimings = Partial<Record<Phase, number>>;

/**
 * Wall-clock milliseconds per phase. A phase that runs more than once
 * accumulates, and phases may overlap (for example two hosts connecting).
 */
export class PhaseTimer {
  private readonly clock: () => number;
  private readonly started = new Map<Phase, number>();
  private readonly totals = new Map<Phase, number>();

  constructor(clock: () => number = () => performance.now()) {
    this.clock = clock;
  }

  start(phase: Phase): void {
    if (this.started.has(phase)) throw new Error(`phase ${phase} is already running`);
    this.started.set(phase, this.clock());
  }

  /** Stops a running phase and returns the milliseconds this run of it took. */
  end(phase: Phase): number {
    const began = this.started.get(phase);
    if (began === undefined) throw new Error(`phase ${phase} was not started`);
    this.started.delete(phase);
    const elapsed = Math.max(0, this.clock() - began);
    this.totals.set(phase, (this.totals.get(phase) ?? 0) + elapsed);
    return elapsed;
  }

  /** Runs fn as the given phase; the time is recorded whether fn succeeds or throws. */
  async time<T>(phase: Phase, fn: () => T | Promise<T>): Promise<T> {
    this.start(phase);
    try {
      return await fn();
    } finally {
      this.end(phase);
    }
  }

  /** Ends every phase still running, so a failed run still reports where its time went. */
  endAll(): void {
    for (const phase of [...this.started.keys()]) this.end(phase);
  }

  running(): Phase[] {
    return [...this.started.keys()];
  }

  /** Milliseconds recorded so far for a phase (finished runs only). */
  get(phase: Phase): number | undefined {
    return this.totals.get(phase);
  }

  /** Whole milliseconds per phase, in phase order; phases that never ran are left out. */
  toRecord(): PhaseTimings {
    const record: PhaseTimings = {};
    for (const phase of PHASES) {
      const total = this.totals.get(phase);
      if (total !== undefined) record[phase] = Math.round(total);
    }
    return record;
  }
}
