import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerCli } from '../../src/docker/docker-cli.js';
import { parseContainerInspect } from '../../src/docker/inspect.js';
import { MigrationError } from '../../src/errors.js';
import type { CommandResult, Host, HostProcess } from '../../src/host/host.js';
import { MigrationJournal } from '../../src/migration-state.js';
import type { MigrationContext } from '../../src/phases/context.js';
import { type RollbackPlan, rollback } from '../../src/phases/rollback.js';
import { PhaseTimer } from '../../src/report/timings.js';
import type { Settings } from '../../src/settings.js';

const container = parseContainerInspect(
  readFileSync(resolve(import.meta.dirname, '../fixtures/docker26/inspect-testbed-counter.json'), 'utf8'),
);
const TARGET_ID = 'f'.repeat(64);

/** A host that records every command in one shared journal and fails the ones matching `failing`. */
function fakeHost(role: string, journal: string[], failing: RegExp[] = []): Host {
  return {
    role,
    address: `root@${role}:22`,
    async run(command: string): Promise<CommandResult> {
      journal.push(`${role}: ${command}`);
      const fails = failing.some((pattern) => pattern.test(command));
      return { exitCode: fails ? 1 : 0, stdout: '', stderr: fails ? 'Error response from daemon: boom' : '' };
    },
    spawn(): Promise<HostProcess> {
      throw new Error('not used');
    },
    async close(): Promise<void> {},
  };
}

function context(source: Host, target: Host): MigrationContext {
  const settings = { checkpointName: 'cp-1' } as Pick<Settings, 'checkpointName'>;
  return {
    settings: settings as Settings,
    source,
    target,
    sourceDocker: new DockerCli(source),
    targetDocker: new DockerCli(target),
    log: { info() {}, warning() {}, group: (_name, fn) => fn() },
    journal: new MigrationJournal('cp-1'),
    timer: new PhaseTimer(),
    clock: () => 0,
    checkDeadline() {},
  };
}

const plan = (overrides: Partial<RollbackPlan>): RollbackPlan => ({
  container,
  sourcePaused: true,
  restoreAttempted: true,
  targetContainerId: TARGET_ID,
  ...overrides,
});

describe('rollback', () => {
  it('removes the target container before it resumes the source', async () => {
    const journal: string[] = [];
    const ctx = context(fakeHost('source', journal), fakeHost('target', journal));
    const done = await rollback(ctx, plan({}));
    const rm = journal.findIndex((line) => line.startsWith('target: docker rm --force'));
    const unpause = journal.findIndex((line) => line.startsWith('source: docker unpause'));
    expect(rm).toBeGreaterThanOrEqual(0);
    expect(unpause).toBeGreaterThan(rm);
    expect(done).toContain('resumed the source container where it was frozen');
  });

  it('leaves the source frozen when a restored target cannot be confirmed gone', async () => {
    const journal: string[] = [];
    const ctx = context(fakeHost('source', journal), fakeHost('target', journal, [/docker rm/]));
    const error = await rollback(ctx, plan({})).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).code).toBe('ROLLBACK_FAILED');
    expect((error as MigrationError).message).toMatch(/source was left frozen/);
    expect(journal.some((line) => line.includes('docker unpause'))).toBe(false);
  });

  it('resumes the source when the restore never started, even if the target cleanup failed', async () => {
    const journal: string[] = [];
    const ctx = context(fakeHost('source', journal), fakeHost('target', journal, [/docker rm/]));
    const error = await rollback(ctx, plan({ restoreAttempted: false })).catch((caught: unknown) => caught);
    expect((error as MigrationError).code).toBe('ROLLBACK_FAILED');
    expect(journal.some((line) => line.startsWith('source: docker unpause'))).toBe(true);
  });

  it('touches nothing on the source when it was never frozen', async () => {
    const journal: string[] = [];
    const ctx = context(fakeHost('source', journal), fakeHost('target', journal));
    await rollback(ctx, plan({ sourcePaused: false, restoreAttempted: false }));
    expect(journal.filter((line) => line.startsWith('source:') && !line.includes('rm -rf'))).toEqual([]);
  });
});
