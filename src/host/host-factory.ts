import { MigrationError } from '../errors.js';
import type { HostLocation, SshSettings } from '../settings.js';
import { describeHost, type Host } from './host.js';
import { LocalHost } from './local-host.js';
import { connectSsh, type SshConnectOptions, type SshLogger } from './ssh-host.js';
import { checkSudo, withSudo } from './sudo.js';

export interface OpenHostDeps {
  /** Told when a host key goes unchecked; the action shows it as a warning. */
  warn?: (message: string) => void;
  logger?: SshLogger;
  readyTimeoutMs?: number;
  /** Stand-ins for tests. */
  connect?: (options: SshConnectOptions) => Promise<Host & { readonly hostKeyFingerprint?: string }>;
  local?: (role: string) => Host;
}

/**
 * Opens one host: the runner itself or an SSH connection. With sudo, commands
 * go through `sudo -n` unless the login is already root, and a refusal is
 * found now rather than halfway through a migration.
 */
export async function openHost(
  role: string,
  location: HostLocation,
  ssh: SshSettings,
  sudo: boolean,
  deps: OpenHostDeps = {},
): Promise<Host> {
  let host: Host;
  if (location.kind === 'local') {
    host = deps.local ? deps.local(role) : new LocalHost(role);
  } else {
    const connect = deps.connect ?? connectSsh;
    const opened = await connect({
      role,
      spec: location.spec,
      privateKey: ssh.privateKey,
      passphrase: ssh.passphrase,
      knownHosts: ssh.knownHosts,
      insecureSkipHostKeyCheck: ssh.insecureSkipHostKeyCheck,
      jump: ssh.jumpHost,
      readyTimeoutMs: deps.readyTimeoutMs,
      logger: deps.logger,
      ...(deps.warn ? { onRetry: deps.warn } : {}),
    });
    if (ssh.insecureSkipHostKeyCheck) {
      const key = opened.hostKeyFingerprint ? ` (it presented ${opened.hostKeyFingerprint})` : '';
      deps.warn?.(
        `${role} ${opened.address}: the SSH host key was not checked${key}; anyone between the runner and the host could impersonate it. Provide known-hosts instead of insecure-skip-host-key-check.`,
      );
    }
    host = opened;
  }
  if (!sudo) return host;
  try {
    return await applySudo(host);
  } catch (error) {
    await host.close();
    throw error;
  }
}

async function applySudo(host: Host): Promise<Host> {
  const id = await host.run('id -u', { timeoutMs: 30_000 });
  // Root needs no sudo, and minimal hosts may not even have it installed.
  if (id.exitCode === 0 && id.stdout.trim() === '0') return host;
  await checkSudo(host);
  return withSudo(host);
}

/**
 * CRIU, runc and Docker's data need root. A non-root SSH login without sudo would first fail
 * deep in the run ("Permission denied" at the container lock): say so right after connecting.
 */
export async function requireRoot(host: Host, location: HostLocation, sudo: boolean): Promise<void> {
  if (sudo || location.kind !== 'ssh' || location.spec.user === 'root') return;
  const id = await host.run('id -u', { timeoutMs: 30_000 });
  const uid = id.stdout.trim();
  if (id.exitCode === 0 && uid === '0') return;
  throw new MigrationError(
    'NOT_ROOT',
    `${location.spec.user} is not root (uid ${uid || 'unknown'}) and sudo is false`,
    {
      step: 'connect',
      host: describeHost(host),
      remedy: 'log in as root, or set sudo: true with the sudoers rule of docs/hosts.md for this user',
    },
  );
}
