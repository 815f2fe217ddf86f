import type { KnownHostEntry } from '../host/known-hosts.js';
import { shellQuote } from '../host/shell.js';
import type { HostLocation } from '../settings.js';

/** How the container's bytes go from source to target: `auto` picks direct when the source reaches the target. */
export const ROUTES = ['auto', 'direct', 'relay'] as const;
export type RouteSetting = (typeof ROUTES)[number];

/**
 * Who sends and who receives, as the log and the report name them: the source and the target
 * (migrate), the source and the store host (checkpoint), the store host and the target or drill
 * host (restore, drill). The sending host makes the key; the receiving host authorizes it.
 */
export interface RouteEnds {
  from: string;
  to: string;
}

export const SOURCE_TO_TARGET: RouteEnds = { from: 'the source', to: 'the target' };

/** What the sending host saw when it opened the receiving host's SSH server before anything was changed. */
export type ReachVerdict =
  | { reach: 'reachable' }
  | { reach: 'unreachable'; why: string }
  | { reach: 'host-key-mismatch'; why: string }
  | { reach: 'no-client'; why: string };

/** The alias the pinned key is filed under in the run's known_hosts on the source. */
export const TARGET_ALIAS = 'criu-migrate-target';

/** The stream name the forced command answers without touching anything: proves key, from= and command. */
export const CHECK_STREAM = 'check';
export const CHECK_ANSWER = 'criu-migrate-direct-ok';

const PROBE_MARK = 'criu-migrate-reach';

/**
 * Reads the answer of the reachability probe (reachScript). The probe offers no key: a server
 * that asks for one has been reached and has shown the pinned host key, which is all it proves.
 */
export function parseReach(stdout: string, ends: RouteEnds = SOURCE_TO_TARGET): ReachVerdict {
  if (/^no-client$/m.test(stdout))
    return { reach: 'no-client', why: `no OpenSSH client (ssh) on ${ends.from}` };
  const rc = new RegExp(`^${PROBE_MARK} (\\d+)$`, 'm').exec(stdout)?.[1];
  const said = stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(PROBE_MARK))
    .map((line) => line.trim());
  const last = said.at(-1) ?? `ssh exited ${rc ?? '?'}`;
  if (said.some((line) => /Host key verification failed|IDENTIFICATION HAS CHANGED/i.test(line)))
    return { reach: 'host-key-mismatch', why: last };
  if (rc === '0' || said.some((line) => /Permission denied/i.test(line))) return { reach: 'reachable' };
  return { reach: 'unreachable', why: last };
}

/** The run's known_hosts for the source: the target's pinned keys under one alias, revoked ones left out. */
export function pinnedKnownHosts(entries: readonly KnownHostEntry[]): string {
  return entries
    .filter((entry) => !entry.revoked)
    .map((entry) => `${TARGET_ALIAS} ${entry.keyType} ${entry.key.toString('base64')}\n`)
    .join('');
}

export interface SshClientTarget {
  user: string;
  host: string;
  port: number;
  /** The run's files on the source. */
  keyFile?: string;
  knownHostsFile: string;
}

/**
 * The source's forward for memory: overlap: its 127.0.0.1:local leads to the target's page
 * server on the target's 127.0.0.1:remote; no command runs (-N), a failed bind ends ssh.
 */
export function pageForwardArgs(local: number, remote: number): string[] {
  return ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${local}:127.0.0.1:${remote}`];
}

/** AES-GCM first: with AES-NI it moved 64 MiB in about half chacha20's time on the bed. */
export const OPENSSH_CIPHERS = 'aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com';

/**
 * OpenSSH on the source, told everything on its command line: no user or system
 * configuration, no agent, no prompt, the target's key pinned (a changed key fails).
 */
export function sshClientArgs(target: SshClientTarget, extra: readonly string[] = []): string[] {
  return [
    'ssh',
    '-F',
    '/dev/null',
    '-T',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${target.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    `HostKeyAlias=${TARGET_ALIAS}`,
    '-o',
    'CheckHostIP=no',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'IdentityAgent=none',
    '-o',
    'ConnectTimeout=15',
    // A dead peer ends the stream within a minute instead of hanging it.
    '-o',
    'ServerAliveInterval=10',
    '-o',
    'ServerAliveCountMax=6',
    '-o',
    'Compression=no',
    '-o',
    `Ciphers=${OPENSSH_CIPHERS}`,
    '-o',
    'LogLevel=ERROR',
    ...(target.keyFile
      ? ['-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', target.keyFile]
      : []),
    ...extra,
    '-p',
    String(target.port),
    '-l',
    target.user,
    target.host,
  ];
}

/**
 * The probe run on the source before anything changes: its known_hosts lives in a temporary
 * directory removed on exit; no key is offered (PreferredAuthentications=none).
 */
export function reachScript(
  target: Omit<SshClientTarget, 'knownHostsFile' | 'keyFile'>,
  knownHosts: string,
): string {
  const ssh = shellQuote(
    sshClientArgs({ ...target, knownHostsFile: '__KH__' }, [
      '-o',
      'PreferredAuthentications=none',
      '-o',
      'ConnectTimeout=10',
    ]),
  ).replace('__KH__', '"$d/kh"');
  return [
    'command -v ssh >/dev/null 2>&1 || { echo no-client; exit 0; }',
    'd=$(mktemp -d) || exit 1',
    `trap 'rm -rf "$d"' EXIT`,
    `printf '%s' ${shellQuote([knownHosts])} >"$d/kh"`,
    `timeout 30 ${ssh} true </dev/null 2>&1`,
    `echo "${PROBE_MARK} $?"`,
  ].join('\n');
}

/** Stream names the forced command accepts: "s" and a number, or the check. */
export function isStreamName(name: string): boolean {
  return name === CHECK_STREAM || /^s[0-9]{1,6}$/.test(name);
}

/**
 * The forced command of the run's key on the target: it can only hand its stream to a
 * receiving command the runner started on a fifo of this run's stream directory, or
 * answer the check. Anything else the client asks for is refused. It says its pid into
 * the fifo; the receiver then reads sshd's pipe itself through /proc/<pid>/fd/5 (one
 * copy of every byte less than a cat between them: 0.3-0.55 s per GiB on the test bed)
 * and this command only waits for the receiver's end on the second fifo, `<name>.done`.
 * Where its input cannot be opened that way (an sshd that hands over a socket) the
 * receiver writes "cat" there, and the bytes go through the fifo as before.
 */
export function receiveScript(streamsDir: string): string {
  const dir = shellQuote([streamsDir]);
  return [
    '#!/bin/sh',
    "# criu-migrate: the receiving end of one run's host-to-host streams (forced command).",
    'n=$SSH_ORIGINAL_COMMAND',
    `case "$n" in ${CHECK_STREAM}) echo ${CHECK_ANSWER}; exit 0;; s[0-9]*) ;; *) echo "criu-migrate: refused: $n" >&2; exit 2;; esac`,
    'case "$n" in *[!a-z0-9]*) echo "criu-migrate: refused" >&2; exit 2;; esac',
    `f=${dir}/"$n"`,
    '[ -p "$f" ] && [ -p "$f.done" ] || { echo "criu-migrate: no stream $n" >&2; exit 2; }',
    // fd 5 keeps sshd's pipe: fd 0 itself is the other fifo while `read` waits on it.
    'exec 5<&0 3>"$f" || exit 2',
    `printf '%s\\n' "$$" >&3`,
    'IFS= read -r how <"$f.done" || how=',
    '[ "$how" = cat ] && exec cat <&5 >&3',
    'exit 0',
  ].join('\n');
}

/**
 * The run's line in authorized_keys: no forwarding, no pty (restrict), only the forced
 * command, only from the source's address when known. The comment names the run, and
 * removal matches exactly that comment. memory: overlap adds one forward, to the target's
 * page server on its loopback (`pagePort`), and no other.
 */
export function authorizedKeyLine(
  publicKey: string,
  forcedCommand: string,
  tag: string,
  from?: string,
  pagePort?: number,
): string {
  const key = publicKey.trim().split(/\s+/).slice(0, 2).join(' ');
  if (!/^ssh-ed25519 [A-Za-z0-9+/=]+$/.test(key))
    throw new Error(`not an ed25519 public key: ${key.slice(0, 40)}`);
  if (!/^[A-Za-z0-9._/-]+$/.test(forcedCommand))
    throw new Error(`unsafe forced command path ${forcedCommand}`);
  if (!/^[A-Za-z0-9._-]+$/.test(tag)) throw new Error(`unsafe tag ${tag}`);
  if (from !== undefined && !/^[0-9a-fA-F.:]+$/.test(from)) throw new Error(`unsafe from address ${from}`);
  if (pagePort !== undefined && !(Number.isInteger(pagePort) && pagePort > 0 && pagePort < 65_536))
    throw new Error(`not a port: ${pagePort}`);
  const options = [
    'restrict',
    `command="/bin/sh ${forcedCommand}"`,
    ...(from ? [`from="${from}"`] : []),
    ...(pagePort !== undefined ? ['port-forwarding', `permitopen="127.0.0.1:${pagePort}"`] : []),
  ];
  return `${options.join(',')} ${key} ${tag}`;
}

/**
 * Appends the run's line under a lock on the directory (the file is replaced on removal, so
 * its own inode cannot be the lock): concurrent runs never lose each other's lines, and a
 * file without a final newline gets one first so no line is glued to ours.
 */
export function authorizeScript(file: string, line: string): string {
  const q = shellQuote([file]);
  return [
    'umask 077',
    `f=${q}`,
    'dir=$(dirname "$f")',
    '[ -d "$dir" ] || mkdir -p "$dir" || exit 1',
    'exec 9<"$dir" || exit 1',
    'flock -w 30 9 || { echo "authorized_keys: lock not taken in 30 s" >&2; exit 3; }',
    'if [ -s "$f" ] && [ -n "$(tail -c1 "$f")" ]; then printf \'\\n\' >>"$f" || exit 1; fi',
    `printf '%s\\n' ${shellQuote([line])} >>"$f"`,
  ].join('\n');
}

/**
 * Removes exactly the lines carrying the run's tag, under the same lock: a copy keeping the
 * file's owner and mode, filtered, then renamed over it (readers see the old or the new file,
 * never a half one). Nothing there: nothing done.
 */
export function unauthorizeScript(file: string, tag: string): string {
  return [
    `f=${shellQuote([file])}`,
    `tag=${shellQuote([tag])}`,
    '[ -e "$f" ] || exit 0',
    'exec 9<"$(dirname "$f")" || exit 1',
    'flock -w 30 9 || { echo "authorized_keys: lock not taken in 30 s" >&2; exit 3; }',
    // The tag is the line's last field: whole-field match, so run1 never takes run10's line.
    'awk -v t="$tag" \'$NF == t { f = 1 } END { exit !f }\' "$f" || exit 0',
    't="$f.criu-migrate.$$"',
    'cp -p "$f" "$t" || exit 1',
    'awk -v t="$tag" \'$NF != t\' "$f" >"$t" || { rm -f "$t"; exit 1; }',
    'mv -f "$t" "$f" || { rm -f "$t"; exit 1; }',
  ].join('\n');
}

/** Where sshd reads the login's authorized keys (sshd -T), else the default. */
export function authorizedKeysFileScript(user: string): string {
  return [
    `p=$(sshd -T -C user=${shellQuote([user])},host=localhost,addr=127.0.0.1 2>/dev/null | awk '$1=="authorizedkeysfile"{print $2; exit}')`,
    '[ -n "$p" ] || p=.ssh/authorized_keys',
    'case "$p" in /*) ;; *) p="$HOME/$p";; esac',
    'printf \'%s\\n\' "$p" | sed -e "s|%h|$HOME|g" -e "s|%u|$(id -un)|g" -e "s|%%|%|g"',
  ].join('\n');
}

/** The source's own address towards the target, for from=: `ip route get` says which it uses. */
export function parseRouteSource(stdout: string): string | undefined {
  const src = /\bsrc\s+([0-9a-fA-F.:]+)/.exec(stdout)?.[1];
  return src && /^[0-9a-fA-F.:]+$/.test(src) ? src : undefined;
}

export function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || (host.includes(':') && /^[0-9a-fA-F:.]+$/.test(host));
}

/** What the run knows before it chooses. */
export interface RouteFacts {
  setting: RouteSetting;
  /** Names of the sending and receiving hosts in the reasons (default: the source, the target). */
  ends?: RouteEnds;
  /** Both ends are the same host and login (a store kept on the container's host). */
  sameHost?: boolean;
  /** The runner reaches the target through a jump host. */
  jumpHost: boolean;
  /** Either host is the runner itself (no SSH server to stream to, or no ssh client to stream from). */
  localHost: boolean;
  targetUser: string;
  /** The target's pinned, unrevoked keys from known-hosts. */
  pinnedKeys: number;
  /** Undefined: the probe did not run (ruled out earlier, or relay). */
  reach?: ReachVerdict;
}

export type RouteChoice =
  | { route: 'direct'; reason: string }
  | { route: 'relay'; reason: string; refused: boolean };

/** Why the direct route cannot be taken before the probe, or undefined when only the probe can tell. */
export function directRuledOut(facts: Omit<RouteFacts, 'reach'>): string | undefined {
  const { from, to } = facts.ends ?? SOURCE_TO_TARGET;
  if (facts.localHost) return 'a host is the runner itself';
  // Both ends would use the same run directory; and there is no network between a host and itself.
  if (facts.sameHost) return `${from} is ${to} itself: there is no second host to stream to`;
  if (facts.jumpHost)
    return `the runner reaches ${to} through a jump host, and ${from} has no key for it: streams go through the runner`;
  if (facts.targetUser !== 'root')
    return `${to}'s login is ${facts.targetUser}, not root: the run's key would write root's files as that user (direct needs a root login on ${to})`;
  if (facts.pinnedKeys === 0)
    return `known-hosts pins no key for ${to}, so ${from} could not check ${to}'s identity`;
  return undefined;
}

/** auto: direct when possible, else relay; direct: refused when not possible; relay: always relay. */
export function chooseRoute(facts: RouteFacts): RouteChoice {
  if (facts.setting === 'relay') return { route: 'relay', reason: 'route: relay', refused: false };
  const { from, to } = facts.ends ?? SOURCE_TO_TARGET;
  const ruledOut = directRuledOut(facts);
  const why =
    ruledOut ??
    (facts.reach === undefined
      ? `${from} was not asked`
      : facts.reach.reach === 'reachable'
        ? undefined
        : facts.reach.reach === 'host-key-mismatch'
          ? `${from} saw another host key for ${to} than known-hosts pins (${facts.reach.why})`
          : facts.reach.reach === 'no-client'
            ? facts.reach.why
            : `${from} cannot reach ${to}'s SSH server (${facts.reach.why})`);
  if (why === undefined) return { route: 'direct', reason: `${from} reaches ${to}'s SSH server` };
  return { route: 'relay', reason: why, refused: facts.setting === 'direct' };
}

/** Whether two locations name the same host and port (same machine: one run directory for both ends). */
export function sameEndpoint(a: HostLocation, b: HostLocation): boolean {
  if (a.kind !== 'ssh' || b.kind !== 'ssh') return a.kind === b.kind;
  return a.spec.host === b.spec.host && a.spec.port === b.spec.port;
}
