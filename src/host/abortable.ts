import { randomBytes } from 'node:crypto';
import { errorMessage, MigrationError } from '../errors.js';
import {
  type CommandResult,
  describeHost,
  type Host,
  type HostProcess,
  type RunOptions,
  type SpawnOptions,
} from './host.js';
import { appendNotes, shellQuote, tailLines } from './shell.js';

/** The environment variable that marks every process one command starts. */
export const TAG_VARIABLE = 'CRIU_MIGRATE_CMD';

/** The kill script's own limit; it needs about 2 s plus two scans of /proc. */
const KILL_TIMEOUT_MS = 15_000;
/** After an abort, how long run() waits for the command and the kill before it rejects anyway. */
const SETTLE_LIMIT_MS = 20_000;

const TAG_PATTERN = /^[0-9a-f]{16}$/;

export interface BindSignalOptions {
  /** Applied to run() calls that give no timeoutMs. */
  defaultTimeoutMs?: number;
  /** The error aborted calls reject with; abortReason() unless given. */
  reason?: (signal: AbortSignal) => MigrationError;
}

/** signal.reason when it is a MigrationError, else CANCELLED. */
export function abortReason(signal: AbortSignal, host: Host): MigrationError {
  if (signal.reason instanceof MigrationError) return signal.reason;
  return new MigrationError('CANCELLED', 'the run was cancelled', { host: describeHost(host) });
}

export function newTag(): string {
  return randomBytes(8).toString('hex');
}

function checkTag(tag: string): void {
  if (!TAG_PATTERN.test(tag)) throw new TypeError(`a command tag is 16 lowercase hex digits, not "${tag}"`);
}

/**
 * The command with the tag in its environment. The exec makes the shell that
 * runs the command carry the tag too, so killing by tag also stops the shell
 * and it cannot go on to the command's next step.
 */
export function tagCommand(command: string, tag: string): string {
  checkTag(tag);
  return `${TAG_VARIABLE}=${tag}; export ${TAG_VARIABLE}; exec sh -c ${shellQuote([command])}`;
}

/**
 * POSIX sh that stops every process whose environment holds exactly the tag
 * line: SIGTERM, up to about 2 s to go, then SIGKILL. Exits 1 when some are
 * still there after that. GNU grep reads all of /proc in one go. It exits 2
 * both when it lacks -z and when some environ file was unreadable or vanished
 * (kernel threads, exiting processes), so only when it also fails on a tiny
 * NUL-separated probe does the slower loop take over.
 */
export function killByTagScript(tag: string): string {
  checkTag(tag);
  return `t='${TAG_VARIABLE}=${tag}'
tagged() {
  found=$(grep -l -s -z -x -F -e "$t" /proc/[0-9]*/environ 2>/dev/null)
  if [ $? -eq 2 ] && [ -z "$found" ] && ! printf '%s\\0' "$t" | grep -q -z -x -F -e "$t" 2>/dev/null; then
    found=$(for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' 2>/dev/null <"$f" | grep -qx -F -e "$t" && echo "$f"; done)
  fi
  for f in $found; do
    p=\${f#/proc/}; p=\${p%/environ}
    [ "$p" = "$$" ] || printf '%s ' "$p"
  done
}
if sleep 0.1 2>/dev/null; then nap=0.2 rounds=10; else nap=1 rounds=2; fi
p=$(tagged)
[ -n "$p" ] || exit 0
echo "SIGTERM: $p"
kill -TERM $p 2>/dev/null
i=0
while [ "$i" -lt "$rounds" ]; do
  sleep "$nap"
  p=$(tagged)
  [ -n "$p" ] || exit 0
  i=$((i + 1))
done
echo "SIGKILL: $p"
kill -KILL $p 2>/dev/null
sleep "$nap"
p=$(tagged)
[ -z "$p" ] || { echo "still running after SIGKILL: $p" >&2; exit 1; }
`;
}

/**
 * Runs the kill script through `host`, without any signal. Never throws: what
 * went wrong comes back as text, undefined when all went well.
 */
async function killTagged(host: Host, tag: string): Promise<string | undefined> {
  try {
    const result = await host.run(killByTagScript(tag), { timeoutMs: KILL_TIMEOUT_MS });
    if (result.exitCode === 0) return undefined;
    const output = tailLines(`${result.stdout}${result.stderr}`);
    return `stopping the command's processes failed (exit ${result.exitCode})${output ? `:\n${output}` : ''}`;
  } catch (error) {
    return `stopping the command's processes failed: ${errorMessage(error)}`;
  }
}

/** One signal that aborts when either does; dispose() drops the listeners. */
function eitherSignal(
  first: AbortSignal,
  second: AbortSignal | undefined,
): { signal: AbortSignal; dispose(): void } {
  if (second === undefined || second === first) return { signal: first, dispose: () => {} };
  const both = new AbortController();
  const abort = (): void => both.abort();
  if (first.aborted || second.aborted) both.abort();
  first.addEventListener('abort', abort, { once: true });
  second.addEventListener('abort', abort, { once: true });
  return {
    signal: both.signal,
    dispose: () => {
      first.removeEventListener('abort', abort);
      second.removeEventListener('abort', abort);
    },
  };
}

/** Calls `then` once when `signal` aborts (at once when it already has); dispose() drops the listener. */
function onAbort(signal: AbortSignal, then: () => void): () => void {
  if (signal.aborted) {
    then();
    return () => {};
  }
  signal.addEventListener('abort', then, { once: true });
  return () => signal.removeEventListener('abort', then);
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

function withDetail(error: MigrationError, extra: string | undefined): MigrationError {
  if (extra === undefined) return error;
  return new MigrationError(error.code, error.message, {
    step: error.step,
    host: error.host,
    remedy: error.remedy,
    detail: error.detail ? `${error.detail}\n${extra}` : extra,
    cause: error.cause ?? error,
  });
}

type Settled = { ok: true; result: CommandResult } | { ok: false; error: unknown };

/**
 * The same host, with its commands tied to `signal`. Each command is tagged
 * with a random value in its environment; on abort the host stops the channel
 * (or the local process group) and a kill script, run through the same host,
 * stops every process carrying the tag: pipelines, background children and
 * whatever left the process group, which a channel signal never reaches.
 * Calls made after the abort reject at once; calls running when it comes
 * reject with the reason once the kill has finished (or SETTLE_LIMIT_MS passed).
 * A signal given to one call is honoured too, with the Host contract: that
 * call resolves with exitCode -1.
 */
export function bindSignal(host: Host, signal: AbortSignal, options: BindSignalOptions = {}): Host {
  const reason = (): MigrationError => (options.reason ? options.reason(signal) : abortReason(signal, host));

  const run = async (command: string, runOptions: RunOptions = {}): Promise<CommandResult> => {
    if (signal.aborted) throw reason();
    const timeoutMs = runOptions.timeoutMs ?? options.defaultTimeoutMs;
    // The call's own signal already aborted: the host answers without starting anything.
    if (runOptions.signal?.aborted) return host.run(command, { ...runOptions, timeoutMs });
    const tag = newTag();
    // The command's own deadline kills by tag too: a hung runc or CRIU leaves no process behind.
    const deadline = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => deadline.abort(), timeoutMs);
    const own = eitherSignal(deadline.signal, runOptions.signal);
    const stop = eitherSignal(signal, own.signal);
    let killing: Promise<string | undefined> | undefined;
    let wake = (): void => {};
    const aborted = new Promise<undefined>((resolve) => {
      wake = () => resolve(undefined);
    });
    const dispose = onAbort(stop.signal, () => {
      killing = killTagged(host, tag);
      wake();
    });
    try {
      const running: Promise<Settled> = host
        .run(tagCommand(command, tag), { ...runOptions, timeoutMs: undefined, signal: stop.signal })
        .then(
          (result): Settled => ({ ok: true, result }),
          (error: unknown): Settled => ({ ok: false, error }),
        );
      const first = await Promise.race([running, aborted]);
      if (killing === undefined && first !== undefined) {
        if (first.ok) return first.result;
        throw first.error;
      }
      // From the abort on, wait for the command and the kill, but not forever.
      const settled = await within(Promise.all([running, killing]), SETTLE_LIMIT_MS);
      const problem =
        settled === undefined ? 'the command was still being stopped when run() stopped waiting' : settled[1];
      if (signal.aborted) throw withDetail(reason(), problem);
      // Only the call's own signal aborted: answer as any aborted run does.
      const outcome = settled?.[0] ?? {
        ok: true,
        result: { exitCode: -1, stdout: '', stderr: '[aborted]\n' },
      };
      if (!outcome.ok) throw outcome.error;
      const notes = [
        ...(deadline.signal.aborted ? [`timed out after ${timeoutMs} ms and was killed`] : []),
        ...(problem ? [problem] : []),
      ];
      return { ...outcome.result, exitCode: -1, stderr: appendNotes(outcome.result.stderr, notes) };
    } finally {
      if (timer) clearTimeout(timer);
      dispose();
      stop.dispose();
      own.dispose();
    }
  };

  const spawn = async (command: string, spawnOptions: SpawnOptions = {}): Promise<HostProcess> => {
    if (signal.aborted) throw reason();
    const tag = newTag();
    const stop = eitherSignal(signal, spawnOptions.signal);
    let killing = false;
    // Fired, not awaited: `exit` settles when the command has ended.
    const killRemote = (): void => {
      if (killing) return;
      killing = true;
      void killTagged(host, tag);
    };
    let proc: HostProcess;
    try {
      proc = await host.spawn(tagCommand(command, tag), { signal: stop.signal });
    } catch (error) {
      stop.dispose();
      throw error;
    }
    const dispose = onAbort(stop.signal, killRemote);
    const done = (): void => {
      dispose();
      stop.dispose();
    };
    proc.exit.then(done, done);
    return {
      stdin: proc.stdin,
      stdout: proc.stdout,
      stderr: proc.stderr,
      exit: proc.exit,
      kill: () => {
        proc.kill();
        killRemote();
      },
    };
  };

  return {
    role: host.role,
    address: host.address,
    hostKeyFingerprint: host.hostKeyFingerprint,
    run,
    spawn,
    close: () => host.close(),
  };
}
