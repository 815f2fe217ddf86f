import { MigrationError } from '../errors.js';
import type { CommandResult, Host, HostProcess, RunOptions, SpawnOptions } from './host.js';

const ATTEMPTS = 3;
const BACKOFF_MS = [1_000, 3_000];

function isConnectionLoss(error: unknown): boolean {
  return (
    error instanceof MigrationError && (error.code === 'SSH_DISCONNECTED' || error.code === 'SSH_UNREACHABLE')
  );
}

/**
 * A host that opens a new connection when the old one dropped, and runs the
 * command again. Only for commands that are safe to repeat (rollback and
 * roll-forward steps): a dropped connection must not leave a run half undone.
 */
export function reconnecting(first: Host, reopen: () => Promise<Host>, sleep = defaultSleep): Host {
  let current = first;
  let reopening: Promise<Host> | undefined;

  async function again(failed: Host): Promise<Host> {
    if (current !== failed) return current;
    reopening ??= (async () => {
      await failed.close().catch(() => {});
      return reopen();
    })().finally(() => {
      reopening = undefined;
    });
    current = await reopening;
    return current;
  }

  async function attempt<T>(call: (host: Host) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let i = 0; i < ATTEMPTS; i++) {
      const host = current;
      try {
        return await call(host);
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        lastError = error;
        if (i === ATTEMPTS - 1) break;
        await sleep(BACKOFF_MS[i] ?? 3_000);
        try {
          await again(host);
        } catch (reopenError) {
          lastError = reopenError;
        }
      }
    }
    throw lastError;
  }

  return {
    role: first.role,
    address: first.address,
    get hostKeyFingerprint() {
      return current.hostKeyFingerprint;
    },
    run: (command: string, options?: RunOptions): Promise<CommandResult> =>
      attempt((host) => host.run(command, options)),
    spawn: (command: string, options?: SpawnOptions): Promise<HostProcess> =>
      attempt((host) => host.spawn(command, options)),
    close: async (): Promise<void> => {
      await current.close();
    },
  };
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
