import type { Readable } from 'node:stream';
import { EngineError } from '../engine/engine.js';
import { asMigrationError, MigrationError } from '../errors.js';
import { describeHost, type HostProcess } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import type { JournalEntry, RestoreCopiesKey } from '../state/journal.js';
import { restoreCopiesScript } from '../state/recovery.js';
import type { Named, RunContext } from './context.js';
import type { StageResult } from './stage.js';

export interface RestoreResult {
  restoreMs: number;
  /** Clock reading when the target reported the container running again. */
  runningAt: number;
}

const CRIU_LOG_LINES = 25;

/**
 * The lines of a CRIU log worth showing: its error lines, then its last lines
 * (where CRIU stopped; not every cause is logged as an Error).
 */
export function criuLogExcerpt(log: string, count = CRIU_LOG_LINES): string {
  const lines = log.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('==>'));
  const tail = lines.slice(-count);
  const flagged = lines.filter((line, i) => /\bError\b/.test(line) && i < lines.length - count).slice(-10);
  return [...flagged, ...(flagged.length > 0 && tail.length > 0 ? ['...'] : []), ...tail].join('\n');
}

/** What restore() needs that is set up before the freeze: journal entries and the log follower. */
export interface PreparedRestore {
  starting: JournalEntry;
  follower: LogFollower;
  key: RestoreCopiesKey;
  unpackDir?: string;
}

/**
 * Before the freeze: the journal entries for the restore (containerd's copies
 * are found by `key`, known before the images exist) and a follower of CRIU's
 * restore log, waiting for its cue. Nothing of this runs while frozen.
 */
export async function prepareRestore(
  ctx: RunContext<Named>,
  staged: Pick<StageResult, 'targetContainerId'>,
  key: RestoreCopiesKey,
  dockerRoot: string,
  /** containerd's TMPDIR on the target when known: where its restore copies land. */
  unpackDir?: string,
  /** Where else CRIU may write its restore log (a work-dir set by the restore's CRIU configuration), looked at first. */
  otherLogPaths: readonly string[] = [],
): Promise<PreparedRestore> {
  const entries = await ctx.journal.intendAll(
    [
      { kind: 'restore-copies', ...key, ...(unpackDir ? { dir: unpackDir } : {}) },
      { kind: 'restore-started', containerId: staged.targetContainerId },
    ],
    'target',
  );
  const follower = await followCriuLog(ctx, [
    ...otherLogPaths,
    ...ctx.targetDocker.restoreLogPaths(dockerRoot, staged.targetContainerId),
  ]);
  return { starting: entries[1] as JournalEntry, follower, key, ...(unpackDir ? { unpackDir } : {}) };
}

/**
 * `docker start --checkpoint`: CRIU restores the frozen processes inside the
 * staged container. containerd deletes the task's bundle, CRIU's restore.log
 * with it, when a restore fails, so the log is followed while the restore runs.
 */
export async function restore(
  ctx: RunContext<Named>,
  staged: Pick<StageResult, 'targetContainerId'>,
  prepared: PreparedRestore,
): Promise<RestoreResult> {
  const started = ctx.clock();
  const { starting, follower, key, unpackDir } = prepared;
  follower.begin();
  let failed: EngineError | undefined;
  try {
    await ctx.targetDocker.startFromCheckpoint(
      staged.targetContainerId,
      ctx.settings.checkpointName,
      'restore',
    );
  } catch (error) {
    if (!(error instanceof EngineError)) {
      await follower.stop(true);
      throw error;
    }
    failed = error;
  }
  const runningAt = ctx.clock();
  const criuLog = await follower.stop(failed !== undefined);
  if (failed) {
    // The CLI never reached the daemon: nothing can be running on the target.
    if (/Cannot connect to the Docker daemon/i.test(failed.stderr))
      await ctx.journal.abandon(starting, 'target');
    await removeRestoreCopies(ctx, key, unpackDir);
    const excerpt = criuLogExcerpt(criuLog);
    throw new MigrationError('RESTORE_FAILED', 'the target could not restore the checkpoint', {
      step: 'restore',
      host: describeHost(ctx.target),
      detail: [failed.stderr.trim(), excerpt && `CRIU restore log:\n${excerpt}`].filter(Boolean).join('\n'),
      remedy: restoreRemedy(`${failed.stderr}\n${criuLog}`),
    });
  }
  await ctx.journal.done(starting, 'target');
  await removeRestoreCopies(ctx, key, unpackDir);
  return { restoreMs: runningAt - started, runningAt };
}

/**
 * What to do about a failed restore, from what CRIU said: a file of the layer
 * with another size than at the dump is not a host problem, the checkpoint's
 * layer disagrees with its memory images.
 */
export function restoreRemedy(said: string): string {
  const badSize = /File (\S+) has bad size (\d+) \(expect (\d+)\)/.exec(said);
  if (badSize) {
    return `the file ${badSize[1]} in the container's writable layer has ${badSize[2]} bytes, the process had it at ${badSize[3]}: the layer was copied after the processes wrote to it again (checkpoints taken before the layer was copied at the freeze), or something changed it since; restore an older or a newer checkpoint (taken with a version that checks the layer against the dump), and keep writes out of the layer between checkpoint and restore`;
  }
  return "read the CRIU lines above; run `criu check` on the target and compare both hosts' kernel, CRIU and runc versions";
}

// containerd 1.7 unpacks the checkpoint into <TMPDIR>/ctrd-checkpoint* for the restore and never
// removes it: a full copy of the memory images per restore, or a few KiB when the pages were linked.
async function removeRestoreCopies(
  ctx: RunContext<Named>,
  key: RestoreCopiesKey,
  unpackDir: string | undefined,
): Promise<void> {
  const result = await ctx.target.run(restoreCopiesScript(key, unpackDir), { timeoutMs: 60_000 });
  if (result.exitCode !== 0)
    ctx.log.warning(`could not remove containerd's copy of the checkpoint: ${result.stderr.trim()}`);
}

/** Polls of 10 ms after the cue before the follower gives up waiting for the log (3 minutes). */
const FOLLOW_POLLS = 18_000;

/**
 * Waits for its cue (end of its standard input), then for the first of the
 * paths to appear, then follows the open file (tail -f follows the
 * descriptor, so it keeps reading after containerd unlinks it). A failed
 * restore creates and deletes the log within a second: poll every 10 ms,
 * but only from the cue on, and never forever.
 */
export function followScript(paths: readonly string[]): string {
  const tests = paths.map(
    (path) => `[ -e ${shellQuote([path])} ] && exec tail -n +1 -f ${shellQuote([path])}`,
  );
  return `cat >/dev/null; i=0; while [ "$i" -lt ${FOLLOW_POLLS} ]; do ${tests.join('; ')}; sleep 0.01; i=$((i + 1)); done 2>/dev/null`;
}

export interface LogFollower {
  /** The cue: start looking for the log now (the restore is about to start). */
  begin(): void;
  /** Stops following and returns what was read; after a failure, waits a moment for the last lines. */
  stop(failed: boolean): Promise<string>;
}

async function followCriuLog(ctx: RunContext<Named>, paths: string[]): Promise<LogFollower> {
  let process: HostProcess;
  try {
    process = await ctx.target.spawn(followScript(paths));
  } catch (error) {
    ctx.log.warning(`cannot follow CRIU's restore log: ${asMigrationError(error, 'COMMAND_FAILED').message}`);
    return { begin: () => {}, stop: async () => '' };
  }
  const text = collect(process.stdout);
  process.stdin.on('error', () => {});
  return {
    begin() {
      process.stdin.end();
    },
    async stop(failed) {
      // tail reads what was appended before the file went away; give it a moment to catch up.
      if (failed) await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill();
      await Promise.race([process.exit, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      return text();
    },
  };
}

/** Keeps the last MiB a stream printed. */
function collect(stream: Readable): () => string {
  let kept = '';
  stream.on('data', (chunk: Buffer) => {
    kept = (kept + chunk.toString('utf8')).slice(-1024 * 1024);
  });
  stream.on('error', () => {});
  return () => kept;
}
