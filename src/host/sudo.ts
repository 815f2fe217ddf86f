import { MigrationError } from '../errors.js';
import {
  type CommandResult,
  describeHost,
  type Host,
  type HostProcess,
  type RunOptions,
  type SpawnOptions,
} from './host.js';
import { shellQuote, tailLines } from './shell.js';

/**
 * The command text withSudo runs in place of `command`. Always this one form, so a
 * sudoers rule for `sh -c *` (docs/hosts.md) covers every command, the probe included.
 */
export function sudoCommand(command: string): string {
  return `sudo -n sh -c ${shellQuote([command])}`;
}

/** The same host, with every command run as root through `sudo -n`. */
export function withSudo(host: Host): Host {
  return {
    role: host.role,
    address: host.address,
    hostKeyFingerprint: host.hostKeyFingerprint,
    run: (command: string, options?: RunOptions): Promise<CommandResult> =>
      host.run(sudoCommand(command), options),
    spawn: (command: string, options?: SpawnOptions): Promise<HostProcess> =>
      host.spawn(sudoCommand(command), options),
    close: (): Promise<void> => host.close(),
    // SSH's own forwarding: sudo has nothing to do with it.
    ...(host.tunnels ? { tunnels: host.tunnels } : {}),
  };
}

/** Fails with SUDO_REFUSED unless the host's user may sudo without a password. */
export async function checkSudo(host: Host): Promise<void> {
  const result = await host.run(sudoCommand('true'), { timeoutMs: 30_000 });
  if (result.exitCode === 0) return;
  const missing = result.exitCode === 127;
  const stderr = tailLines(result.stderr);
  throw new MigrationError(
    'SUDO_REFUSED',
    missing ? 'sudo is not installed' : `sudo -n refused to run a command (exit ${result.exitCode})`,
    {
      step: 'connect',
      host: describeHost(host),
      detail: stderr === '' ? undefined : stderr,
      remedy: missing
        ? 'install sudo and allow this user passwordless sudo, or set `sudo: false` and log in as root'
        : 'allow this user `sudo -n sh -c` without a password (the rule in docs/hosts.md, in /etc/sudoers.d), or set `sudo: false` and log in as root',
    },
  );
}
