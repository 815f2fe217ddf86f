import type { ContainerInspect } from '../engine/docker/inspect.js';
import { errorMessage, MigrationError } from '../errors.js';
import { blocking, type Check } from '../policy/compatibility.js';
import { judgeProbe, movesEstablished, ownNetworkNamespace } from '../policy/connections.js';
import { evaluateGate, type GateFacts, networkRouteFor, ownHolder, withHolderPorts } from '../policy/gate.js';
import type { NetworkRoute } from '../policy/network-route.js';
import type { VolumeFacts } from '../policy/volumes.js';
import { gatherHostFacts, type HostFacts } from '../probe/facts.js';
import { compareCpus, probeSource, probeTarget } from '../probe/preflight-facts.js';
import { gatherVolumeFacts } from '../probe/volume-facts.js';
import type { MemoryMode, Settings } from '../settings.js';
import type { MigrationContext } from './context.js';

export interface PreflightResult {
  source: HostFacts;
  target: HostFacts;
  container: ContainerInspect;
  checks: Check[];
  /** The volumes that move with the container, when it mounts any. */
  volumes?: VolumeFacts;
  /** How the container's network reaches the target. */
  route: NetworkRoute;
  /** The network holder the source container joins, when an earlier migration made one. */
  sourceHolder?: ContainerInspect;
  /** Connections over loopback inside the container: dumped and restored established. */
  tcpEstablished: boolean;
}

/** What the gate needs of a run: both hosts and their Docker, the settings and a log. */
export type GateContext = Pick<
  MigrationContext,
  'source' | 'target' | 'sourceDocker' | 'targetDocker' | 'log'
> & {
  settings: Pick<
    Settings,
    | 'container'
    | 'kernelPolicy'
    | 'sudo'
    | 'strict'
    | 'volumeReplace'
    | 'volumeUseTargetOptions'
    | 'networkHolder'
  > & { memory?: MemoryMode };
};

/** Facts of the two hosts, gathered once and shared by the gates of several containers. */
export interface SharedHostFacts {
  source: Promise<HostFacts>;
  target: Promise<HostFacts>;
  cpu: ReturnType<typeof compareCpus>;
}

export function gatherSharedHostFacts(ctx: Pick<GateContext, 'source' | 'target'>): SharedHostFacts {
  return {
    source: gatherHostFacts(ctx.source),
    target: gatherHostFacts(ctx.target),
    cpu: compareCpus(ctx.source, ctx.target),
  };
}

export interface GateRun {
  facts: GateFacts;
  checks: Check[];
}

export function formatCheck(check: Check): string {
  const mark = check.status === 'pass' ? 'ok  ' : check.status === 'warn' ? 'WARN' : 'FAIL';
  const code = check.status !== 'pass' && check.code ? ` [${check.code}]` : '';
  const line = `${mark} [${check.host}] ${check.name}: ${check.observed} (expected ${check.expected})${code}`;
  return check.status !== 'pass' && check.remedy ? `${line}\n       remedy: ${check.remedy}` : line;
}

/**
 * Reads both hosts and the container at once, read-only: host facts, the
 * container's size and connections, the target's room for it, and CRIU's CPU
 * comparison (in a temporary directory it removes).
 */
export async function gatherGateFacts(ctx: GateContext, shared?: SharedHostFacts): Promise<GateFacts> {
  const ref = ctx.settings.container;
  const inspected = ctx.sourceDocker.inspectContainer(ref, 'preflight').then(
    (container) => ({ container, inspectError: undefined }),
    (error: unknown) => ({ container: undefined, inspectError: errorMessage(error) }),
  );
  const targetFacts = shared?.target ?? gatherHostFacts(ctx.target);
  // Joined to another container's network: it may be the holder an earlier migration made,
  // whose ports the target must have free.
  const holderOf = inspected.then(async ({ container }) => {
    const joined = container?.HostConfig.NetworkMode?.match(/^container:(.+)$/)?.[1];
    if (!container || !joined) return undefined;
    const holder = await ctx.sourceDocker.inspectContainer(joined, 'preflight').catch(() => undefined);
    return ownHolder({ container, sourceHolder: holder }) ? holder : undefined;
  });
  // Each host.run is an SSH channel, and sshd allows 10 at once by default: the probes
  // ask many questions each, in one channel, so the gate stays under that.
  const [source, target, { container, inspectError }, sourceProbe, targetProbe, cpu, volumes, sourceHolder] =
    await Promise.all([
      shared?.source ?? gatherHostFacts(ctx.source),
      targetFacts,
      inspected,
      inspected.then(({ container }) => probeSource(ctx.source, container)),
      Promise.all([inspected, holderOf]).then(([{ container }, holder]) =>
        probeTarget(
          ctx.target,
          container && withHolderPorts(container, holder),
          targetFacts.then((facts) => facts.docker.rootDir),
        ),
      ),
      shared?.cpu ?? compareCpus(ctx.source, ctx.target),
      inspected.then(({ container }) =>
        container ? gatherVolumeFacts(ctx.source, ctx.target, container) : undefined,
      ),
      holderOf,
    ]);
  const targetNameTaken = container ? targetProbe.nameTaken : false;
  const facts: GateFacts = { ref, source, target, targetNameTaken, sourceProbe, targetProbe, cpu };
  if (container) facts.container = container;
  if (volumes) facts.volumes = volumes;
  if (inspectError !== undefined) facts.inspectError = inspectError;
  if (sourceHolder) facts.sourceHolder = sourceHolder;
  return facts;
}

/** Gathers and evaluates; never throws for a failed check (preflight mode reports them all). */
export async function runGate(ctx: GateContext, shared?: SharedHostFacts): Promise<GateRun> {
  const facts = await gatherGateFacts(ctx, shared);
  const checks = evaluateGate(facts, {
    kernelPolicy: ctx.settings.kernelPolicy,
    sudo: ctx.settings.sudo,
    volumeReplace: ctx.settings.volumeReplace,
    volumeUseTargetOptions: ctx.settings.volumeUseTargetOptions,
    holderAllowed: ctx.settings.networkHolder,
    ...(ctx.settings.memory ? { memory: ctx.settings.memory } : {}),
  });
  return { facts, checks };
}

/**
 * The gate as migrate mode runs it: changes nothing, and refuses before
 * anything is touched when the migration cannot work (with strict, also on warnings).
 */
export async function preflight(ctx: GateContext): Promise<PreflightResult> {
  const { facts, checks } = await runGate(ctx);
  for (const check of checks) {
    if (check.status === 'warn') ctx.log.warning(formatCheck(check));
    else ctx.log.info(formatCheck(check));
  }
  const failed = blocking(checks, ctx.settings.strict);
  const { container } = facts;
  if (failed.length > 0 || !container) {
    const first = failed[0];
    const strict = ctx.settings.strict && failed.some((check) => check.status === 'warn');
    throw new MigrationError(
      first?.code ?? 'PREFLIGHT_FAILED',
      `migration refused before touching the container${strict ? ' (strict: warnings count)' : ''}: ${failed.map((check) => `[${check.host}] ${check.name}: ${check.observed}`).join('; ')}`,
      { step: 'preflight', remedy: first?.remedy, detail: failed.map(formatCheck).join('\n') },
    );
  }
  const route = networkRouteFor(facts, { holderAllowed: ctx.settings.networkHolder })?.route;
  if (!route) throw new Error('the gate passed without a network route');
  const holder = ownHolder(facts);
  return {
    source: facts.source,
    target: facts.target,
    container,
    checks,
    ...(facts.volumes ? { volumes: facts.volumes } : {}),
    route,
    ...(holder ? { sourceHolder: holder } : {}),
    tcpEstablished:
      ownNetworkNamespace(container.HostConfig.NetworkMode) &&
      connectionsMove(facts.sourceProbe, container.State.Pid),
  };
}

/** The gate passed: every connection it saw moves whole, so the dump keeps them established. */
function connectionsMove(probe: GateFacts['sourceProbe'], initPid: number | undefined): boolean {
  const verdict = judgeProbe(probe, initPid);
  return verdict !== undefined && movesEstablished(verdict);
}
