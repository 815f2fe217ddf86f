import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostSpec } from '../host/host-spec.js';
import { runHostsOf } from '../modes/run-hosts.js';
import type { Runtime } from '../runtime.js';
import type { ConnectionSettings, HostLocation, Mode, Settings } from '../settings.js';
import type { Side } from './journal.js';

/** The names under which the main step saves state for its post step. */
export const SAVED = {
  /** Saved first thing: whatever happens next, the second run of the entry point is the post step. */
  isPost: 'isPost',
  journal: 'journal',
  /** A compose unit's run: every member's journal (JSON object, member name -> record JSON). */
  unitJournals: 'unitJournals',
  /** A compose unit's run: the networks it created on the target (JSON array of names). */
  unitNetworks: 'unitNetworks',
  container: 'container',
  /** The post plan (JSON): everything the post step needs but the secrets. */
  post: 'post',
  /** A compose unit's members (JSON list): each keeps its journal on the hosts, not in the saved state. */
  unitMembers: 'unitMembers',
} as const;

const MEMBER = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Pure: the unit members the main step saved, only names Docker could have given (anything else is dropped). */
export function parseUnitMembers(text: string): string[] {
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value)
      ? value.filter((name): name is string => typeof name === 'string' && MEMBER.test(name)).slice(0, 100)
      : [];
  } catch {
    return [];
  }
}

/**
 * What the post step needs to settle the main step's journal, saved by the main step: the
 * post step never reads the inputs again (a later step may have removed the key file they
 * name). The key and passphrase live in a 0600 file under RUNNER_TEMP, never in the state.
 */
export interface PostPlan {
  mode: Mode;
  container: string;
  /** The hosts the journal names as its source and target. */
  source: HostLocation;
  target: HostLocation;
  /** Where the mode keeps its journal. */
  sides: Side[];
  /** Where the mode takes the container's lock. */
  lockSides: Side[];
  sudo: boolean;
  knownHosts: string;
  insecureSkipHostKeyCheck: boolean;
  jumpHost?: HostSpec;
  /** The 0600 file with the key and passphrase; the post step removes it. */
  secretFile?: string;
}

interface SavedSecrets {
  privateKey?: string;
  passphrase?: string;
}

/** Pure: the plan of a mode that keeps a journal; undefined for modes with nothing to settle. */
export function planPost(settings: Settings): Omit<PostPlan, 'secretFile'> | undefined {
  const common = {
    mode: settings.mode,
    container: settings.container,
    sudo: settings.sudo,
    knownHosts: settings.ssh.knownHosts,
    insecureSkipHostKeyCheck: settings.ssh.insecureSkipHostKeyCheck,
    ...(settings.ssh.jumpHost ? { jumpHost: settings.ssh.jumpHost } : {}),
  };
  if (settings.mode === 'preflight' || settings.mode === 'list') return undefined;
  const hosts = runHostsOf(settings);
  return {
    ...common,
    source: hosts.source.location,
    target: hosts.target.location,
    sides: [...hosts.journal],
    lockSides: [...hosts.lock],
  };
}

/** Saves the post plan, and the secrets in a 0600 file in a 0700 directory under RUNNER_TEMP. */
export function savePostPlan(
  settings: Settings,
  runtime: Pick<Runtime, 'saveState' | 'env' | 'newToken'>,
): void {
  const plan: PostPlan | undefined = planPost(settings);
  if (!plan) return;
  const secrets: SavedSecrets = {
    ...(settings.ssh.privateKey ? { privateKey: settings.ssh.privateKey } : {}),
    ...(settings.ssh.passphrase ? { passphrase: settings.ssh.passphrase } : {}),
  };
  if (secrets.privateKey || secrets.passphrase) {
    const dir = join(runtime.env.RUNNER_TEMP || tmpdir(), `criu-migrate-post-${runtime.newToken()}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    plan.secretFile = join(dir, 'ssh.json');
    writeFileSync(plan.secretFile, JSON.stringify(secrets), { mode: 0o600, flag: 'wx' });
  }
  runtime.saveState(SAVED.post, JSON.stringify(plan));
}

export interface LoadedPostPlan {
  plan: PostPlan;
  connection: ConnectionSettings;
  /** What to mask in the log. */
  secrets: string[];
}

/** The main step's post plan, with its connection settings; undefined when it saved none. */
export function loadPostPlan(runtime: Pick<Runtime, 'getState'>): LoadedPostPlan | undefined {
  const text = runtime.getState(SAVED.post);
  if (!text) return undefined;
  const plan = JSON.parse(text) as PostPlan;
  let secrets: SavedSecrets = {};
  if (plan.secretFile) {
    try {
      secrets = JSON.parse(readFileSync(plan.secretFile, 'utf8')) as SavedSecrets;
    } catch {
      // Removed by someone else: connecting then fails and says so.
    }
  }
  return {
    plan,
    connection: {
      sudo: plan.sudo,
      ssh: {
        knownHosts: plan.knownHosts,
        insecureSkipHostKeyCheck: plan.insecureSkipHostKeyCheck,
        ...(plan.jumpHost ? { jumpHost: plan.jumpHost } : {}),
        ...(secrets.privateKey ? { privateKey: secrets.privateKey } : {}),
        ...(secrets.passphrase ? { passphrase: secrets.passphrase } : {}),
      },
    },
    secrets: [secrets.privateKey, secrets.passphrase].filter((value): value is string => Boolean(value)),
  };
}

/** Removes the secret file's directory; the post step calls it whatever happened. */
export function forgetPostSecrets(plan: PostPlan): void {
  if (!plan.secretFile) return;
  rmSync(join(plan.secretFile, '..'), { recursive: true, force: true });
}
