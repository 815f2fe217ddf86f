import type { ErrorCode } from '../errors.js';
import type { Identity } from '../probe/parsers.js';
import type { Check } from './compatibility.js';

type Role = 'source' | 'target';

/** How opening one host went: the facts of having connected (or not). */
export interface ConnectionFacts {
  role: Role;
  kind: 'local' | 'ssh';
  /** "root@10.0.0.2:22" or "local". */
  address: string;
  connected: boolean;
  /** SHA256 fingerprint of the host key the server presented. */
  hostKeyFingerprint?: string;
  /** The key was checked against known-hosts (false only with insecure-skip-host-key-check). */
  hostKeyVerified: boolean;
  /** "[user@]host[:port]" of the bastion, when one is used. */
  jumpHost?: string;
  /** The sudo input. */
  sudo: boolean;
  /** Why opening the host failed. */
  error?: { code: ErrorCode; message: string; remedy?: string };
}

const SSH_EXPECTED = 'reachable, key accepted, host key matching known-hosts';

export function connectionChecks(facts: ConnectionFacts): Check[] {
  const { role } = facts;
  if (facts.kind === 'local') {
    const local: Check = {
      host: role,
      name: 'connection',
      status: facts.connected ? 'pass' : 'fail',
      observed: facts.connected ? "the runner's own machine (no SSH)" : (facts.error?.message ?? 'failed'),
      expected: 'commands run on the runner',
    };
    if (!facts.connected) {
      local.code = facts.error?.code ?? 'COMMAND_FAILED';
      if (facts.error?.remedy) local.remedy = facts.error.remedy;
    }
    return [local, ...sudoChecks(facts)];
  }
  const via = facts.jumpHost ? ` via jump host ${facts.jumpHost}` : '';
  const sshFailed = !facts.connected && facts.error?.code !== 'SUDO_REFUSED';
  if (sshFailed) {
    return [
      {
        host: role,
        name: 'ssh',
        status: 'fail',
        observed: `${facts.address}${via}: ${facts.error?.message ?? 'could not connect'}`,
        expected: SSH_EXPECTED,
        remedy: facts.error?.remedy ?? 'check the address, the key and known-hosts',
        code: facts.error?.code ?? 'SSH_UNREACHABLE',
      },
    ];
  }
  const key = facts.hostKeyFingerprint ? ` ${facts.hostKeyFingerprint}` : '';
  const ssh: Check = facts.hostKeyVerified
    ? {
        host: role,
        name: 'ssh',
        status: 'pass',
        observed: `${facts.address}${via}: connected, key accepted, host key${key} matches known-hosts`,
        expected: SSH_EXPECTED,
      }
    : {
        host: role,
        name: 'ssh',
        status: 'warn',
        observed: `${facts.address}${via}: connected, key accepted, host key${key} NOT verified (insecure-skip-host-key-check)`,
        expected: SSH_EXPECTED,
        remedy: `pass the host's known_hosts lines in known-hosts (ssh-keyscan from a network you trust, fingerprints checked) and drop insecure-skip-host-key-check`,
        code: 'HOST_KEY_UNVERIFIED',
      };
  return [ssh, ...sudoChecks(facts)];
}

function sudoChecks(facts: ConnectionFacts): Check[] {
  if (!facts.sudo) return [];
  const expected = 'sudo -n runs commands without a password (not needed when logged in as root)';
  if (facts.error?.code === 'SUDO_REFUSED') {
    return [
      {
        host: facts.role,
        name: 'sudo',
        status: 'fail',
        observed: facts.error.message,
        expected,
        remedy: facts.error.remedy ?? 'allow this user passwordless sudo, or log in as root',
        code: 'SUDO_REFUSED',
      },
    ];
  }
  if (!facts.connected) return [];
  return [{ host: facts.role, name: 'sudo', status: 'pass', observed: 'sudo -n works', expected }];
}

/** CRIU, runc and Docker's data directory need root: as the login or through sudo. */
export function privilegeCheck(role: Role, identity: Identity | undefined, sudo: boolean): Check {
  const name = 'runs as root';
  const expected = 'uid 0 (log in as root, or set sudo: true)';
  if (!identity) {
    return {
      host: role,
      name,
      status: 'warn',
      observed: 'could not read id -u',
      expected,
      remedy: 'see the preflight log for the command that failed on this host',
      code: 'FACT_UNREADABLE',
    };
  }
  if (identity.uid === 0) {
    const how = identity.sudoUser
      ? `root through sudo from ${identity.sudoUser}`
      : `${identity.user} (uid 0)`;
    return { host: role, name, status: 'pass', observed: how, expected };
  }
  return {
    host: role,
    name,
    status: 'fail',
    observed: `${identity.user} (uid ${identity.uid})`,
    expected,
    remedy: sudo
      ? 'sudo did not make the commands run as root: check the sudoers rule'
      : 'log in as root, or set sudo: true with passwordless sudo for this user',
    code: 'NOT_ROOT',
  };
}
