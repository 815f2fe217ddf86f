import type { ContainerInspect } from '../engine/docker/inspect.js';
import { HOLDER_ARCHES, HOLDER_LABEL, type HolderNeeds, holderName } from '../engine/docker/net-holder.js';
import type { Check } from './compatibility.js';
import type { Version } from './versions.js';

/**
 * How the container's network reaches the target.
 * - direct: the target container is created with the source's network settings, as always.
 * - holder: a network holder container on the target owns the network, and the container
 *   joins its namespace (`--network container:<holder>`); the dump marks the namespace
 *   external so CRIU leaves it to the restore.
 */
export type NetworkRoute = 'direct' | 'holder';

/** From 28.0 the daemon attaches a restored task's network namespace by PID before it has one. */
export const FIRST_BROKEN_DOCKER_MAJOR = 28;
export const UPSTREAM_ISSUES = 'moby#50750, containerd#12141';
export const HOLDER_INPUT = 'docker28-network-holder';

export interface NetworkRouteFacts {
  /** HostConfig.NetworkMode of the source container. */
  networkMode: string;
  /** Set when the source container joins a network holder an earlier migration made. */
  sourceHolder?: ContainerInspect;
  targetDocker?: Version;
  /** uname -m of the target. */
  targetArch?: string;
  /** The operator's opt-in (the docker28-network-holder input). */
  holderAllowed: boolean;
  /** Set by modes that cannot make a holder (restore from a store): why, for the remedy. */
  holderUnavailable?: string;
}

export interface RouteDecision {
  route?: NetworkRoute;
  check: Check;
}

export function restoresOwnNetns(docker: Version | undefined): boolean {
  return docker === undefined || docker.major < FIRST_BROKEN_DOCKER_MAJOR;
}

/** The holder an earlier migration made, when `mode` is container:<it> and it carries our label. */
export function isNetworkHolder(holder: ContainerInspect | undefined, app: string): boolean {
  return holder?.Config.Labels?.[HOLDER_LABEL] === app;
}

const NAME = 'network route';

/** Pure: which route the container's network takes to the target, as a gate check. */
export function decideNetworkRoute(facts: NetworkRouteFacts): RouteDecision {
  const { networkMode: mode, targetDocker } = facts;
  const docker = targetDocker ? `Docker ${targetDocker.raw}` : 'Docker (version unknown)';
  const expected =
    'a route the target can restore: host network, or its own network namespace on Docker before 28, or through a network holder';
  const holderCheck = (observed: string): RouteDecision => {
    const arch = facts.targetArch;
    if (arch !== undefined && !(HOLDER_ARCHES as readonly string[]).includes(arch)) {
      return {
        check: {
          host: 'target',
          name: NAME,
          status: 'fail',
          observed: `${observed}, but the target is ${arch}`,
          expected,
          remedy: `the network holder's program exists for ${HOLDER_ARCHES.join(', ')} only: run the container on the host network, or run Docker 26/27 on the target`,
          code: 'NETWORK_HOLDER_UNSUPPORTED',
        },
      };
    }
    return { route: 'holder', check: { host: 'target', name: NAME, status: 'pass', observed, expected } };
  };
  const direct = (observed: string): RouteDecision => ({
    route: 'direct',
    check: { host: 'target', name: NAME, status: 'pass', observed, expected },
  });
  if (mode === 'host') return direct(`host network: restored directly on ${docker}`);
  if (facts.sourceHolder) {
    const holder = facts.sourceHolder.Name.replace(/^\//, '');
    return holderCheck(
      `joins network holder ${holder} on the source: a holder goes along to ${docker} (the namespace is already external)`,
    );
  }
  if (restoresOwnNetns(targetDocker)) return direct(`${mode} network: restored directly on ${docker}`);
  if (facts.holderAllowed) {
    return holderCheck(
      `${mode} network on ${docker}: through a network holder (${HOLDER_INPUT}: true); the container's NetworkMode on the target becomes container:<holder>`,
    );
  }
  return {
    check: {
      host: 'target',
      name: NAME,
      status: 'fail',
      observed: `${mode} network (its own network namespace) onto ${docker}`,
      expected,
      remedy: facts.holderUnavailable
        ? `${docker} cannot restore a container with its own network namespace (${UPSTREAM_ISSUES}: "bind-mount /proc/0/ns/net"), and ${facts.holderUnavailable}: restore onto a host with Docker 26/27, or checkpoint a container that runs with --network host`
        : `${docker} cannot restore a container with its own network namespace (${UPSTREAM_ISSUES}: "bind-mount /proc/0/ns/net"). Either set ${HOLDER_INPUT}: true (a small holder container then owns the network, ports and aliases on the target, and the container joins it as --network container:<name>-netholder), or run the container with --network host, or run Docker 26/27 on the target`,
      code: 'DOCKER_RESTORE_BROKEN',
    },
  };
}

/** What a checkpoint's manifest says of the route its network namespace can take to a target. */
export interface CheckpointNetwork {
  /**
   * direct: the namespace is in the dump; it restores only where the daemon makes a namespace
   * itself (Docker before 28). holder: the namespace was left out of the dump (external); it
   * restores only into a network holder's namespace, on any Docker version.
   */
  route: NetworkRoute;
  /** HostConfig.NetworkMode of the container when it was checkpointed. */
  mode: string;
  /** What the holder on the target must own, from the inspect (present for route holder). */
  holder?: HolderNeeds;
}

/**
 * Pure: the route a checkpoint records, from the container's network and the opt-in.
 * A container that joins a holder already has an external namespace (runc marks it);
 * one with its own namespace is dumped for a holder only when the operator asked.
 */
export function checkpointRoute(facts: {
  networkMode: string;
  joinsHolder: boolean;
  holderAllowed: boolean;
}): NetworkRoute {
  if (facts.networkMode === 'host') return 'direct';
  if (facts.joinsHolder) return 'holder';
  // Another container's namespace is not the container's to leave out (restore refuses it anyway).
  if (facts.networkMode.startsWith('container:')) return 'direct';
  return facts.holderAllowed ? 'holder' : 'direct';
}

export interface RestoreRouteFacts {
  /** HostConfig.NetworkMode of the checkpointed container. */
  networkMode: string;
  /** The manifest's route; undefined for checkpoints written before routes were recorded (direct). */
  recorded?: NetworkRoute;
  targetDocker?: Version;
  targetArch?: string;
  /** The docker28-network-holder input of the restore. */
  holderAllowed: boolean;
  /** The container's name: names the holder in the messages. */
  app: string;
}

/** The Docker versions a direct checkpoint restores on, for messages. */
const DIRECT_TARGETS = `Docker 26/27 (before ${FIRST_BROKEN_DOCKER_MAJOR})`;

/**
 * Pure: restore mode's network route for a stored checkpoint onto a target, as a gate check.
 * A direct dump holds the namespace itself: only a daemon before 28 restores it. A holder
 * dump left it out: only a holder's namespace can take it, on any Docker version.
 */
export function decideRestoreRoute(facts: RestoreRouteFacts): RouteDecision {
  const { networkMode: mode, targetDocker, app } = facts;
  const recorded = facts.recorded ?? 'direct';
  const docker = targetDocker ? `Docker ${targetDocker.raw}` : 'Docker (version unknown)';
  const expected = `a checkpoint this target can restore: host network; a direct checkpoint onto ${DIRECT_TARGETS}; a holder checkpoint with ${HOLDER_INPUT}: true`;
  const kind = facts.recorded
    ? `a ${recorded} checkpoint`
    : 'a checkpoint from before routes were recorded (direct)';
  if (mode === 'host') {
    return {
      route: 'direct',
      check: {
        host: 'target',
        name: NAME,
        status: 'pass',
        observed: `host network: restored directly on ${docker}`,
        expected,
      },
    };
  }
  if (recorded === 'holder') {
    if (!facts.holderAllowed) {
      return {
        check: {
          host: 'target',
          name: NAME,
          status: 'fail',
          observed: `${kind} (its network namespace was left out of the dump for a network holder) onto ${docker} without ${HOLDER_INPUT}`,
          expected,
          remedy: `this checkpoint restores only through a network holder, on any Docker version: run the restore with ${HOLDER_INPUT}: true (a holder container ${holderName(app)} then owns the network on the target)`,
          code: 'CHECKPOINT_NEEDS_HOLDER',
        },
      };
    }
    const arch = facts.targetArch;
    if (arch !== undefined && !(HOLDER_ARCHES as readonly string[]).includes(arch)) {
      return {
        check: {
          host: 'target',
          name: NAME,
          status: 'fail',
          observed: `${kind} onto a ${arch} target`,
          expected,
          remedy: `the network holder's program exists for ${HOLDER_ARCHES.join(', ')} only, and this checkpoint restores only through a holder: restore onto an ${HOLDER_ARCHES.join('/')} host`,
          code: 'NETWORK_HOLDER_UNSUPPORTED',
        },
      };
    }
    return {
      route: 'holder',
      check: {
        host: 'target',
        name: NAME,
        status: 'pass',
        observed: `${kind} (${mode} network) onto ${docker}: through network holder ${holderName(app)}`,
        expected,
      },
    };
  }
  if (restoresOwnNetns(targetDocker)) {
    return {
      route: 'direct',
      check: {
        host: 'target',
        name: NAME,
        status: 'pass',
        observed: `${kind} (${mode} network) onto ${docker}: restored directly`,
        expected,
      },
    };
  }
  return {
    check: {
      host: 'target',
      name: NAME,
      status: 'fail',
      observed: `${kind} (${mode} network, its network namespace in the dump) onto ${docker}`,
      expected,
      remedy: `this checkpoint can go to ${DIRECT_TARGETS} only: ${docker} cannot restore a network namespace from a dump (${UPSTREAM_ISSUES}: "bind-mount /proc/0/ns/net"), and restored into a holder its processes would run in an empty namespace without the network. Restore it onto a host with Docker 26/27; take future checkpoints with ${HOLDER_INPUT}: true so they restore through a holder on any Docker version`,
      code: 'CHECKPOINT_DIRECT_ONLY',
    },
  };
}

/**
 * Pure: whether a holder already on the target owns the network a checkpoint needs (network,
 * addresses, published ports, aliases other than the names Docker adds itself), so the restored
 * container can join it. Hostname and which holder it was on the source do not matter to it.
 */
export function sameHolderNetwork(
  present: HolderNeeds,
  wanted: HolderNeeds,
  ownNames: readonly string[],
): boolean {
  const aliases = (needs: HolderNeeds) =>
    needs.aliases
      .filter((alias) => !ownNames.includes(alias))
      .sort()
      .join('\n');
  const ports = (needs: HolderNeeds) => [...needs.ports].sort().join('\n');
  return (
    present.network === wanted.network &&
    present.ipv4Address === wanted.ipv4Address &&
    present.ipv6Address === wanted.ipv6Address &&
    ports(present) === ports(wanted) &&
    aliases(present) === aliases(wanted)
  );
}
