import { errorMessage, MigrationError } from '../errors.js';
import type { DirectRoute } from '../host/direct.js';
import { describeHost, type Host } from '../host/host.js';
import { entryMatchesHost, parseKnownHosts } from '../host/known-hosts.js';
import { runChecked, shellQuote } from '../host/shell.js';
import type { StreamRoutes } from '../host/stream-routes.js';
import {
  authorizedKeyLine,
  authorizedKeysFileScript,
  authorizeScript,
  CHECK_ANSWER,
  CHECK_STREAM,
  chooseRoute,
  directRuledOut,
  isIpLiteral,
  pageForwardArgs,
  parseReach,
  parseRouteSource,
  pinnedKnownHosts,
  type ReachVerdict,
  type RouteChoice,
  type RouteEnds,
  type RouteSetting,
  reachScript,
  receiveScript,
  SOURCE_TO_TARGET,
  sameEndpoint,
  sshClientArgs,
  unauthorizeScript,
} from '../policy/direct-route.js';
import type { RouteFacts } from '../report/metadata.js';
import type { HostLocation, SshSettings } from '../settings.js';
import { PRIVATE, STATE_ROOT } from '../state/host-records.js';
import type { Journal } from '../state/journal.js';
import type { Logger } from './context.js';

/** What to do when route: direct cannot be taken, in the words of the run's two ends. */
export function directRemedy(ends: RouteEnds = SOURCE_TO_TARGET): string {
  return `let ${ends.from} reach ${ends.to}'s SSH server (same address and port as the action uses, key pinned in known-hosts, a root login on ${ends.to}, no jump host, two different hosts), or set route: auto (falls back to the runner) or route: relay`;
}

/** What preflight decided about the direct route, and what the sending host saw. */
export interface RoutePlan {
  choice: RouteChoice;
  /** Who sends (makes the key) and who receives (authorizes it). */
  ends: RouteEnds;
  reach?: ReachVerdict;
  /** The run's known_hosts text for the sending host (the receiving host's pinned keys). */
  knownHosts: string;
  target?: { user: string; host: string; port: number };
}

export interface RouteSettings {
  route: RouteSetting;
  ssh: SshSettings;
  /** The sending host (the container's host, or the store a checkpoint is read from). */
  source: HostLocation;
  /** The receiving host (the target, the drill host, or the store a checkpoint is written to). */
  target: HostLocation;
  /** How the log names them; default the source and the target. */
  ends?: RouteEnds;
}

/**
 * Preflight, read-only: whether the sending host reaches the receiving host's SSH server,
 * showing the host key known-hosts pins (the probe offers no key and leaves no file). Logged
 * either way; `route: direct` that cannot be taken is refused here, before anything is touched.
 */
export async function planRoute(
  source: Host,
  settings: RouteSettings,
  log: Pick<Logger, 'info' | 'warning'>,
): Promise<RoutePlan> {
  const spec = settings.target.kind === 'ssh' ? settings.target.spec : undefined;
  const pinned = spec
    ? parseKnownHosts(settings.ssh.knownHosts).filter((entry) =>
        entryMatchesHost(entry, spec.host, spec.port),
      )
    : [];
  const knownHosts = pinnedKnownHosts(pinned);
  const ends = settings.ends ?? SOURCE_TO_TARGET;
  const facts = {
    setting: settings.route,
    ends,
    sameHost: sameEndpoint(settings.source, settings.target),
    jumpHost: settings.ssh.jumpHost !== undefined,
    localHost: settings.source.kind === 'local' || spec === undefined,
    targetUser: spec?.user ?? 'root',
    pinnedKeys: knownHosts === '' ? 0 : knownHosts.split('\n').length - 1,
  };
  let reach: ReachVerdict | undefined;
  if (settings.route !== 'relay' && spec && directRuledOut(facts) === undefined) {
    const answer = await source.run(reachScript(spec, knownHosts), { timeoutMs: 60_000 });
    reach = parseReach(answer.stdout, ends);
    log.info(
      `direct route: ${ends.from} ${reach.reach === 'reachable' ? 'reaches' : 'does not reach'} ${ends.to}'s SSH server ${spec.host}:${spec.port}${reach.reach === 'reachable' ? ' (host key as pinned)' : ` (${reach.why})`}`,
    );
  }
  const choice = chooseRoute({ ...facts, ...(reach ? { reach } : {}) });
  if (choice.route === 'relay' && choice.refused) {
    throw new MigrationError('DIRECT_ROUTE_UNAVAILABLE', `route: direct refused: ${choice.reason}`, {
      step: 'preflight',
      host: describeHost(source),
      remedy: directRemedy(ends),
    });
  }
  const said = `route: ${choice.route === 'direct' ? 'host to host (direct)' : 'through the runner (relay)'}: ${choice.reason}`;
  if (choice.route === 'relay' && settings.route === 'auto') log.warning(said);
  else log.info(said);
  return { choice, ends, ...(reach ? { reach } : {}), knownHosts, ...(spec ? { target: spec } : {}) };
}

/**
 * The run's files for the direct route on either host (the key on the sending host, the receiver
 * on the receiving one). The run's token is in the name: two hosts writing like-named checkpoints
 * into one store at once must not share (and empty) each other's receiver.
 */
export function directDir(checkpointName: string, token: string): string {
  return `${STATE_ROOT}/direct/${checkpointName}.${token}`;
}

/** The run's direct route as opened: what closing it removes. */
export interface OpenRoute extends DirectRoute {
  /** memory: overlap: the source's ssh client forwarding its loopback to the target's page server. */
  pageForwardCommand?: string;
  keyDir: string;
  targetDir: string;
  authorizedKeys: string;
  tag: string;
}

/**
 * The run's two hosts: `source` sends (journal side source) and `target` receives (journal side
 * target), in every mode that streams: migrate, checkpoint (into the store), restore and drill
 * (out of the store).
 */
interface OpenContext {
  source: Host;
  target: Host;
  log: Logger;
  journal: Journal;
  settings: { checkpointName: string; route: RouteSetting };
}

/**
 * Opens the direct route before anything big moves: a key pair made on the sending host for
 * this run (private half 0600 in the run's directory there), its public half authorized on
 * the receiving host for this run's forced command only, from the sender's address when known;
 * then one check through it. Everything is journalled first, so a failed, cancelled or
 * killed run removes it. Under auto, a check that fails closes it again and the run relays.
 */
export async function openRoute(
  ctx: OpenContext,
  plan: RoutePlan,
  /** memory: overlap: the source's loopback port forwarded to the target's page server port. */
  pageForward?: { local: number; remote: number },
): Promise<OpenRoute | undefined> {
  const target = plan.target;
  if (plan.choice.route !== 'direct' || !target) return undefined;
  const { from: sender, to: receiver } = plan.ends;
  // Not in the run's work directory: the checkpoint phase empties that one on the source.
  const token = ctx.journal.record.owner.token.replace(/[^A-Za-z0-9._-]/g, '');
  const keyDir = directDir(ctx.settings.checkpointName, token);
  const targetDir = keyDir;
  const streamsDir = `${targetDir}/streams`;
  const tag = `criu-migrate-direct-${token}`;
  const keyFile = `${keyDir}/id_ed25519`;
  const knownHostsFile = `${keyDir}/known_hosts`;
  const sshCommand = shellQuote(sshClientArgs({ ...target, keyFile, knownHostsFile }));

  await ctx.journal.intend({ kind: 'files', side: 'source', paths: [keyDir] }, 'source');
  const made = await runChecked(
    ctx.source,
    [
      `${PRIVATE} rm -rf ${shellQuote([keyDir])} && mkdir -p ${shellQuote([keyDir])} || exit 1`,
      `ssh-keygen -q -t ed25519 -N '' -C ${shellQuote([tag])} -f ${shellQuote([keyFile])} </dev/null >/dev/null || exit 1`,
      `printf '%s' ${shellQuote([plan.knownHosts])} >${shellQuote([knownHostsFile])} || exit 1`,
      `chmod 600 ${shellQuote([keyFile, knownHostsFile])} || exit 1`,
      `cat ${shellQuote([`${keyFile}.pub`])}`,
      isIpLiteral(target.host)
        ? `ip route get ${shellQuote([target.host])} 2>/dev/null | head -1; true`
        : 'true',
    ].join('\n'),
    {
      step: 'stage',
      what: `making the run's key for the direct route on ${sender}`,
      code: 'DIRECT_ROUTE_UNAVAILABLE',
    },
  );
  const [publicKey = '', routeLine = ''] = made.stdout.split('\n');
  const from = parseRouteSource(routeLine);

  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [targetDir] }, 'target');
  const receiveCommand = `${targetDir}/receive`;
  await runChecked(
    ctx.target,
    [
      `${PRIVATE} rm -rf ${shellQuote([targetDir])} && mkdir -p ${shellQuote([streamsDir])} || exit 1`,
      `printf '%s\\n' ${shellQuote([receiveScript(streamsDir)])} >${shellQuote([receiveCommand])}`,
    ].join('\n'),
    { step: 'stage', what: `writing the receiving command on ${receiver}`, code: 'DIRECT_ROUTE_UNAVAILABLE' },
  );
  const keysFile = (
    await runChecked(ctx.target, authorizedKeysFileScript(target.user), {
      step: 'stage',
      what: `finding ${receiver}'s authorized_keys`,
      code: 'DIRECT_ROUTE_UNAVAILABLE',
    })
  ).stdout.trim();
  const line = authorizedKeyLine(publicKey, receiveCommand, tag, from, pageForward?.remote);
  await ctx.journal.around({ kind: 'authorized-key', side: 'target', file: keysFile, tag }, 'target', () =>
    runChecked(ctx.target, authorizeScript(keysFile, line), {
      step: 'stage',
      what: `authorizing the run's key on ${receiver}`,
      code: 'DIRECT_ROUTE_UNAVAILABLE',
    }),
  );
  const route: OpenRoute = {
    from: ctx.source,
    to: ctx.target,
    streamsDir,
    sshCommand,
    ...(pageForward
      ? {
          pageForwardCommand: shellQuote(
            sshClientArgs(
              { ...target, keyFile, knownHostsFile },
              pageForwardArgs(pageForward.local, pageForward.remote),
            ),
          ),
        }
      : {}),
    keyDir,
    targetDir,
    authorizedKeys: keysFile,
    tag,
  };
  ctx.log.info(
    `direct route: a key for this run only, authorized in ${keysFile} on ${receiver} for its receiving command${pageForward ? ` and a forward to its page server (127.0.0.1:${pageForward.remote})` : ''}${from ? ` from ${from}` : ` (${sender}'s address unknown: no from=)`}`,
  );
  const check = await ctx.source.run(`${sshCommand} ${CHECK_STREAM} </dev/null`, { timeoutMs: 60_000 });
  if (check.exitCode === 0 && check.stdout.includes(CHECK_ANSWER)) return route;
  const why = check.stderr.trim().split('\n').at(-1) || `ssh exited ${check.exitCode}`;
  if (ctx.settings.route === 'direct') {
    throw new MigrationError(
      'DIRECT_ROUTE_UNAVAILABLE',
      `route: direct: the run's key did not open ${receiver} (${why})`,
      {
        step: 'stage',
        host: describeHost(ctx.source),
        remedy: directRemedy(plan.ends),
      },
    );
  }
  ctx.log.warning(
    `direct route: the check through the run's key failed (${why}); streams go through the runner`,
  );
  await closeRoute(ctx, route);
  return undefined;
}

/**
 * The planned route opened for the run's streams (ctx.streams sends them host to host from
 * here on); undefined when the plan relays or, under auto, the check through the key failed.
 */
export async function takeRoute(
  ctx: OpenContext & { streams?: StreamRoutes | undefined },
  plan: RoutePlan,
  title: string,
): Promise<OpenRoute | undefined> {
  if (plan.choice.route !== 'direct') return undefined;
  const opened = await ctx.log.group(title, () => openRoute(ctx, plan));
  if (opened && ctx.streams) ctx.streams.direct = opened;
  return opened;
}

/** Ends what takeRoute opened: later streams relay, the key goes from both hosts. */
export async function leaveRoute(
  ctx: Pick<OpenContext, 'source' | 'target' | 'log'> & { streams?: StreamRoutes | undefined },
  opened: OpenRoute | undefined,
): Promise<void> {
  if (!opened) return;
  if (ctx.streams?.direct === opened) ctx.streams.direct = undefined;
  await closeRoute(ctx, opened);
}

/**
 * Removes the run's key from both hosts as soon as the streams are over. The journal keeps
 * its entries: recovery removes them again if this did not finish (harmless when done).
 */
export async function closeRoute(
  ctx: Pick<OpenContext, 'source' | 'target' | 'log'>,
  route: OpenRoute,
): Promise<void> {
  const results = await Promise.allSettled([
    ctx.target.run(
      `${unauthorizeScript(route.authorizedKeys, route.tag)} || exit 1\nrm -rf -- ${shellQuote([route.targetDir])}`,
      { timeoutMs: 60_000 },
    ),
    ctx.source.run(`rm -rf -- ${shellQuote([route.keyDir])}`, { timeoutMs: 60_000 }),
  ]);
  const failed = results.flatMap((result, index) => {
    const where = index === 0 ? 'target' : 'source';
    if (result.status === 'rejected') return [`${where}: ${errorMessage(result.reason)}`];
    return result.value.exitCode === 0
      ? []
      : [`${where}: ${result.value.stderr.trim() || `exit ${result.value.exitCode}`}`];
  });
  if (failed.length > 0)
    ctx.log.warning(
      `direct route: the run's key is not yet removed (${failed.join('; ')}); the journal removes it at the end of the run`,
    );
  else ctx.log.info("direct route: the run's key removed from both hosts");
}

/** The report's account of the route: what was asked, what was taken and why, each stream, the runner's bytes. */
export function routeFacts(
  requested: RouteSetting,
  plan: RoutePlan,
  opened: boolean,
  streams: StreamRoutes | undefined,
  otherRunnerBytes = 0,
): RouteFacts {
  const reach = plan.reach;
  return {
    requested,
    taken: opened ? 'direct' : 'relay',
    reason:
      plan.choice.route === 'direct' && !opened
        ? "the check through the run's key failed"
        : plan.choice.reason,
    ...(reach ? { reach: reach.reach === 'reachable' ? 'reachable' : `${reach.reach}: ${reach.why}` } : {}),
    streams: (streams?.records ?? []).map((record) => ({ ...record })),
    runnerBytes: (streams?.runnerBytes() ?? 0) + otherRunnerBytes,
  };
}
