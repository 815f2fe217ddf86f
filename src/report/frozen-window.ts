/**
 * Where the frozen window goes: each step from the freeze to the target
 * running, in the order the run takes them, and how many commands the run
 * sent to the hosts meanwhile (each one is at least a round trip over SSH).
 * Pure: the clock and the command count are handed in.
 */
export class FrozenWindow {
  private readonly steps: [string, number][] = [];
  private last: number;

  /** `commandTimes`: the clock reading at which each command of the run started (it keeps growing). */
  constructor(
    private readonly clock: () => number,
    private readonly start: number,
    private readonly commandTimes: readonly number[],
  ) {
    this.last = start;
  }

  /** The time since the previous mark (or the freeze) goes to `step`. */
  mark(step: string): void {
    const now = this.clock();
    this.steps.push([step, Math.max(0, now - this.last)]);
    this.last = now;
  }

  /** The time from the previous mark until `at` (a clock reading taken inside a phase) goes to `step`. */
  markAt(step: string, at: number): void {
    this.steps.push([step, Math.max(0, at - this.last)]);
    this.last = Math.max(this.last, at);
  }

  /** Adds a step whose length was measured elsewhere (inside a phase), without moving the mark. */
  split(step: string, from: string, ms: number): void {
    const at = this.steps.findIndex(([name]) => name === from);
    const entry = this.steps[at];
    if (!entry) return;
    const part = Math.min(entry[1], Math.max(0, ms));
    entry[1] -= part;
    this.steps.splice(at, 0, [step, part]);
  }

  /** Rounded milliseconds per step, and `commands`: commands sent to the hosts inside the window. */
  toRecord(): Record<string, number> {
    const record: Record<string, number> = {};
    for (const [step, ms] of this.steps) record[step] = Math.round((record[step] ?? 0) + ms);
    record.commands = this.commandTimes.filter((at) => at >= this.start && at <= this.last).length;
    return record;
  }

  /** One line for the log. */
  describe(): string {
    const record = this.toRecord();
    const { commands, ...steps } = record;
    const parts = Object.entries(steps).map(([step, ms]) => `${step} ${ms} ms`);
    return `frozen window: ${parts.join(', ')}; ${commands} commands on the hosts`;
  }
}
