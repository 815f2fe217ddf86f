import { asMigrationError, MigrationError } from '../../errors.js';

/** Where one member's migration waits for the rest of its unit (see migration.ts). */
export interface UnitHooks {
  /** Before this member's pause: resolves once every member is staged, so none waits frozen for another's stage. */
  allReady(): Promise<void>;
  /** After this member's pause: resolves once every member is paused, so every dump is of one instant. */
  allPaused(): Promise<void>;
  /** After this member's dump (checkpoint of a unit): resolves once every member is dumped, so none runs on while another is dumped. */
  allDumped(): Promise<void>;
  /** Before this member's restore: resolves once the members it depends on are restored. */
  beforeRestore(): Promise<void>;
  /** This member's restore finished: the members that depend on it may restore. */
  restored(): void;
  /**
   * Before the commit point: resolves once every member is verified and the unit's commit is
   * written (its one commit point). From then on every member commits, cancelled or not.
   */
  allVerified(): Promise<void>;
  /** This member failed: every member of the unit gives up at its next wait, and rolls back. */
  failed(error: MigrationError): void;
}

interface Waiter {
  ready: () => boolean;
  resolve: () => void;
  reject: (error: MigrationError) => void;
}

/**
 * The members of one unit, moving side by side: five meeting points (all staged, all
 * paused, all dumped, each dependency restored, all verified) and one failure that stops them all. No timer: each wait
 * ends when the members it waits for arrive or fail, and their commands are bounded.
 */
export class UnitCoordinator {
  private readonly ready = new Set<string>();
  private readonly paused = new Set<string>();
  private readonly dumped = new Set<string>();
  private readonly restoredMembers = new Set<string>();
  private readonly verified = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private failure: MigrationError | undefined;
  private commit: 'not yet' | 'writing' | 'written' = 'not yet';

  constructor(
    private readonly members: readonly string[],
    private readonly waitsFor: ReadonlyMap<string, readonly string[]>,
    /** Writes the unit's commit (a marker every member's journal names); a failure rolls the unit back. */
    private readonly writeCommit: () => Promise<void> = async () => {},
  ) {}

  /** Whether the unit's commit is written: past it, no member may roll back. */
  get committed(): boolean {
    return this.commit === 'written';
  }

  /** The first failure of any member, when one failed. */
  get firstFailure(): MigrationError | undefined {
    return this.failure;
  }

  hooksFor(member: string): UnitHooks {
    return {
      allReady: () => this.arrive(this.ready, member, () => this.members.every((m) => this.ready.has(m))),
      allPaused: () => this.arrive(this.paused, member, () => this.members.every((m) => this.paused.has(m))),
      allDumped: () => this.arrive(this.dumped, member, () => this.members.every((m) => this.dumped.has(m))),
      beforeRestore: () =>
        this.wait(() => (this.waitsFor.get(member) ?? []).every((need) => this.restoredMembers.has(need))),
      restored: () => {
        this.restoredMembers.add(member);
        this.settle();
      },
      allVerified: () => {
        this.verified.add(member);
        if (this.commit === 'not yet' && this.members.every((m) => this.verified.has(m)) && !this.failure) {
          this.commit = 'writing';
          this.writeCommit().then(
            () => {
              this.commit = 'written';
              this.settle();
            },
            (error: unknown) => {
              this.commit = 'not yet';
              this.fail(member, asMigrationError(error, 'COMMIT_NOT_DURABLE'));
            },
          );
        }
        return this.wait(() => this.commit === 'written');
      },
      failed: (error) => this.fail(member, error),
    };
  }

  fail(member: string, error: MigrationError): void {
    // Once the unit's commit is being written a member's failure is its own (it finishes
    // forward, from its journal if need be): the unit stands.
    if (this.failure || this.commit !== 'not yet') return;
    this.failure = new MigrationError(
      'COMPOSE_MEMBER_FAILED',
      `${member} of the unit failed (${error.code}: ${error.message}); the whole unit rolls back`,
      {
        step: error.step,
        remedy:
          'every member was resumed on the source and nothing of the unit stays on the target: fix the cause named for that member and run again',
        cause: error,
      },
    );
    this.settle();
  }

  private arrive(set: Set<string>, member: string, ready: () => boolean): Promise<void> {
    set.add(member);
    return this.wait(ready);
  }

  private wait(ready: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.add({ ready, resolve, reject });
      this.settle();
    });
  }

  private settle(): void {
    for (const waiter of [...this.waiters]) {
      if (this.failure) {
        this.waiters.delete(waiter);
        waiter.reject(this.failure);
      } else if (waiter.ready()) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }
}
