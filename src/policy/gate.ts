import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { HostFacts } from '../probe/facts.js';
import type { CpuComparison, SourceProbe, TargetProbe } from '../probe/preflight-facts.js';
import type { KernelPolicy } from '../settings.js';
import { privilegeCheck } from './access-rules.js';
import { type Check, evaluateCompatibility } from './compatibility.js';
import { evaluateContainer, evaluatePlacement } from './container-rules.js';
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
}

export interface GateOptions {
  kernelPolicy: KernelPolicy;
  sudo: boolean;
  /** volume-replace: a target volume with other contents may be replaced. */
  volumeReplace: boolean;
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
  const containerFacts = {
    ref: facts.ref,
    container,
    targetNameTaken: facts.targetNameTaken,
    ...(facts.inspectError !== undefined ? { inspectError: facts.inspectError } : {}),
  };
  return [
    ...privileges,
    ...evaluateCompatibility(
      { source: facts.source, target: facts.target, cpu },
      { kernelPolicy: options.kernelPolicy },
    ),
    ...evaluateContainer(containerFacts),
    ...(container && sourceProbe && targetProbe
      ? evaluatePlacement({ container, source: sourceProbe, target: targetProbe })
      : []),
    ...(container && facts.volumes
      ? evaluateVolumes(container, facts.volumes, { replace: options.volumeReplace })
      : []),
  ];
}
