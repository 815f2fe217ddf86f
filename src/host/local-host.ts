import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage, MigrationError } from '../errors.js';
import { abortReason } from './abortable.js';
import type {
  CommandResult,
  Host,
  HostProcess,
  LoopbackListener,
  LoopbackTunnels,
  ProcessExit,
  RunOptions,
  SpawnOptions,
} from './host.js';
import { appendNotes } from './shell.js';

/** How long a stopped command gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 3_000;
/**
 * After the shell exits, how long to wait for its output pipes to close.
 * A background child that inherited them could otherwise hold run() forever.
 */
const PIPE_CLOSE_GRACE_MS = 10_000;
const ABORTED_NOTE = 'aborted';

export interface LocalHostOptions {
  pipeCloseGraceMs?: number;
}

/** The runner itself, as a host. Commands run as `sh -c`. */
export class LocalHost implements Host {
  readonly address = 'local';
  readonly tunnels = localTunnels;

  private readonly pipeCloseGraceMs: number;

  constructor(
    readonly role: string,
    options: LocalHostOptions = {},
  ) {
    this.pipeCloseGraceMs = options.pipeCloseGraceMs ?? PIPE_CLOSE_GRACE_MS;
  }

  async run(command: string, options: RunOptions = {}): Promise<CommandResult> {
    const { signal } = options;
    if (signal?.aborted) return { exitCode: -1, stdout: '', stderr: appendNotes('', [ABORTED_NOTE]) };
    const child = startShell(command);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // The command may exit without reading its input; that is not our error.
    child.stdin.on('error', () => {});

    // The first of timeout and abort decides the note.
    let stopped: 'timeout' | 'abort' | undefined;
    const stop = (why: 'timeout' | 'abort'): void => {
      if (stopped !== undefined || !stopTree(child)) return;
      stopped = why;
    };
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = (): void => stop('abort');
    signal?.addEventListener('abort', onAbort, { once: true });

    const ended = waitForEnd(child, this.pipeCloseGraceMs);
    child.stdin.end(options.input ?? '');
    const end = await ended;
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);

    const notes: string[] = [];
    let exitCode = end.exitCode ?? -1;
    if (end.startError) notes.push(`could not start sh: ${end.startError}`);
    if (stopped === 'timeout') {
      exitCode = -1;
      notes.push(`timed out after ${options.timeoutMs} ms and was killed`);
    } else if (stopped === 'abort') {
      exitCode = -1;
      notes.push(ABORTED_NOTE);
    } else if (end.signal) {
      notes.push(`killed by signal ${end.signal}`);
    }
    return {
      exitCode,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: appendNotes(Buffer.concat(stderr).toString('utf8'), notes),
    };
  }

  async spawn(command: string, options: SpawnOptions = {}): Promise<HostProcess> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal, this);
    const child = startShell(command);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) =>
        reject(
          new MigrationError('COMMAND_FAILED', `could not start sh on the runner: ${errorMessage(error)}`, {
            cause: error,
          }),
        ),
      );
    });
    const kill = (): void => {
      stopTree(child);
    };
    signal?.addEventListener('abort', kill, { once: true });
    // Aborted while the shell was starting.
    if (signal?.aborted) kill();
    const exit = new Promise<ProcessExit>((resolve) => {
      child.once('close', (code, sig) => {
        signal?.removeEventListener('abort', kill);
        resolve({ exitCode: code, signal: sig });
      });
    });
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      kill,
    };
  }

  async close(): Promise<void> {}
}

/** Shells whose streams have all closed: their process group id may be reused. */
const closedShells = new WeakSet<ChildProcessWithoutNullStreams>();

function startShell(command: string): ChildProcessWithoutNullStreams {
  // Its own process group, so stopping it reaches the whole pipeline it starts.
  const child = spawn('sh', ['-c', command], { stdio: 'pipe', detached: true });
  child.once('close', () => closedShells.add(child));
  return child;
}

interface ShellEnd {
  exitCode: number | null;
  signal: string | null;
  startError?: string;
}

function waitForEnd(child: ChildProcessWithoutNullStreams, pipeCloseGraceMs: number): Promise<ShellEnd> {
  return new Promise((resolve) => {
    let pipeTimer: NodeJS.Timeout | undefined;
    const finish = (end: ShellEnd): void => {
      if (pipeTimer) clearTimeout(pipeTimer);
      resolve(end);
    };
    child.once('error', (error) => finish({ exitCode: null, signal: null, startError: errorMessage(error) }));
    child.once('close', (code, signal) => finish({ exitCode: code, signal }));
    child.once('exit', (code, signal) => {
      pipeTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish({ exitCode: code, signal });
      }, pipeCloseGraceMs);
      pipeTimer.unref();
    });
  });
}

/**
 * SIGTERM first: a sudo in the group relays it to the root command it started,
 * which the runner's user could not signal itself. SIGKILL after a grace period.
 * False when the shell had already ended, so there was nothing to stop.
 */
function stopTree(child: ChildProcessWithoutNullStreams): boolean {
  // The shell may be gone while children it started still hold the pipes, so only closed means done.
  if (child.pid === undefined || closedShells.has(child)) return false;
  signalGroup(child.pid, 'SIGTERM');
  const pid = child.pid;
  const escalate = setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
  escalate.unref();
  child.once('close', () => clearTimeout(escalate));
  return true;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone, or only processes we may not signal are left.
  }
}

/** The runner's own loopback: plain sockets. */
export const localTunnels: LoopbackTunnels = {
  connect(port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  },
  listen(onConnection: (stream: Duplex) => void): Promise<LoopbackListener> {
    return new Promise((resolve, reject) => {
      const server = createServer(onConnection);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : 0;
        resolve({
          port,
          close: () => new Promise<void>((done) => server.close(() => done())),
        });
      });
    });
  },
};
