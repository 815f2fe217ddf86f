import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { HostFacts } from '../probe/facts.js';
import type { CpuComparison, SourceProbe, TargetProbe } from '../probe/preflight-facts.js';
import type { KernelPolicy, MemoryMode } from '../settings.js';
import { privilegeCheck } from './access-rules.js';
import { type Check, evaluateCompatibility } from './compatibility.js';
import { evaluateContainer, evaluatePlacement } from './container-rules.js';
import { inspectShapeProblems, shapeCheck, volumeShapeProblems } from './inspect-shape.js';
import { decideNetworkRoute, isNetworkHolder } from './network-route.js';
import { evaluateVolumes, type VolumeFacts } from './volumes.js';

/** Everything the preflight gate gathered from both hosts. */
export interface GateFacts {
  /** The container input. */
  ref: string;
  source: HostFacts;
  target: HostFacts;
  container?: ContainerInspect;
  inspectError?: string;
  /** Undefined when the target could not be asked. */
  targetNameTaken: boolean | undefined;
  sourceProbe?: SourceProbe;
  targetProbe?: TargetProbe;
  cpu?: CpuComparison;
  /** The named volumes that move with the container. */
  volumes?: VolumeFacts;
  /** The network holder the source container joins (container:<it>), from an earlier migration. */
  sourceHolder?: ContainerInspect;
}

export interface GateOptions {
  kernelPolicy: KernelPolicy;
  sudo: boolean;
  /** volume-replace: a target volume with other contents may be replaced. */
  volumeReplace: boolean;
  /** volume-use-target-options: a target volume with driver options is used as it is. */
  volumeUseTargetOptions: boolean;
  /** The docker28-network-holder input: bridge and user networks onto Docker 28/29 through a holder. */
  holderAllowed: boolean;
  /** How a migration would move the pages (absent: eager); the source's disk check follows it. */
  memory?: MemoryMode;
}

/** The source's network holder, when the container joins one an earlier migration made. */
export function ownHolder(
  facts: Pick<GateFacts, 'container' | 'sourceHolder'>,
): ContainerInspect | undefined {
  const { container, sourceHolder } = facts;
  if (!container || !sourceHolder) return undefined;
  const mode = container.HostConfig.NetworkMode ?? '';
  const joined =
    mode === `container:${sourceHolder.Id}` || mode === `container:${sourceHolder.Name.replace(/^\//, '')}`;
  return joined && isNetworkHolder(sourceHolder, container.Name.replace(/^\//, ''))
    ? sourceHolder
    : undefined;
}

/**
 * The container as the target must take it: joined to a holder, its published ports are
 * the holder's (the holder goes along and publishes them on the target).
 */
export function withHolderPorts(
  container: ContainerInspect,
  holder: ContainerInspect | undefined,
): ContainerInspect {
  if (!holder) return container;
  const ports = holder.HostConfig;
  return {
    ...container,
    HostConfig: {
      ...container.HostConfig,
      ...(ports.PortBindings ? { PortBindings: ports.PortBindings } : {}),
      ...(ports.PublishAllPorts !== undefined ? { PublishAllPorts: ports.PublishAllPorts } : {}),
    },
  };
}

/** The route check, or none when there is no container to route. */
export function networkRouteFor(facts: GateFacts, options: Pick<GateOptions, 'holderAllowed'>) {
  const { container } = facts;
  if (!container) return undefined;
  const holder = ownHolder(facts);
  return decideNetworkRoute({
    networkMode: container.HostConfig.NetworkMode || 'default',
    ...(holder ? { sourceHolder: holder } : {}),
    ...(facts.target.docker.serverVersion ? { targetDocker: facts.target.docker.serverVersion } : {}),
    ...(facts.target.kernel.arch ? { targetArch: facts.target.kernel.arch } : {}),
    holderAllowed: options.holderAllowed,
  });
}

/** Every check of the gate, in report order; pure. */
export function evaluateGate(facts: GateFacts, options: GateOptions): Check[] {
  const { sourceProbe, targetProbe, container } = facts;
  const privileges = [
    ...(sourceProbe ? [privilegeCheck('source', sourceProbe.identity, options.sudo)] : []),
    ...(targetProbe ? [privilegeCheck('target', targetProbe.identity, options.sudo)] : []),
  ];
  const cpu = {
    ...(facts.cpu ? { comparison: facts.cpu } : {}),
    ...(sourceProbe?.cpu ? { source: sourceProbe.cpu } : {}),
    ...(targetProbe?.cpu ? { target: targetProbe.cpu } : {}),
  };
  const route = networkRouteFor(facts, options);
  const holder = ownHolder(facts);
  const containerFacts = {
    ref: facts.ref,
    container,
    targetNameTaken: facts.targetNameTaken,
    ...(facts.inspectError !== undefined ? { inspectError: facts.inspectError } : {}),
  };
  // Before any of it becomes a path or an argument on a host.
  const shape = container
    ? shapeCheck(
        [
          ...inspectShapeProblems(container),
          ...(facts.volumes?.source ?? []).flatMap((probe) =>
            probe.info ? volumeShapeProblems(probe.name, probe.info) : [],
          ),
        ],
        "the source's docker inspect",
      )
    : undefined;
  return [
    ...privileges,
    ...(shape ? [shape] : []),
    ...evaluateCompatibility(
      { source: facts.source, target: facts.target, cpu },
      { kernelPolicy: options.kernelPolicy },
    ),
    ...evaluateContainer(containerFacts),
    ...(route && facts.target.docker.reachable ? [route.check] : []),
    ...(container && sourceProbe && targetProbe
      ? evaluatePlacement({
          container: withHolderPorts(container, holder),
          source: sourceProbe,
          target: targetProbe,
          ...(route?.route === 'holder' && holder ? { sourceHolder: holder } : {}),
          ...(options.memory ? { memory: options.memory } : {}),
        })
      : []),
    ...(container && facts.volumes
      ? evaluateVolumes(container, facts.volumes, {
          replace: options.volumeReplace,
          useTargetOptions: options.volumeUseTargetOptions,
        })
      : []),
  ];
}
