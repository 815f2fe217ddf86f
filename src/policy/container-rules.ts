import type { ContainerInspect } from '../docker/inspect.js';
import type { Check } from './compatibility.js';

export interface ContainerFactsForRules {
  /** What the user asked for (name or ID). */
  ref: string;
  /** The source's inspect, or undefined when it has no such container. */
  container: ContainerInspect | undefined;
  /** The target already has a container by that name. */
  targetNameTaken: boolean;
}

/** Pure rules about the container itself; the host rules live in compatibility.ts. */
export function evaluateContainer(facts: ContainerFactsForRules): Check[] {
  const { container, ref } = facts;
  if (!container) {
    return [
      {
        host: 'source',
        name: 'container exists',
        status: 'fail',
        observed: `no container "${ref}"`,
        expected: 'a running container',
        remedy: 'check the container input: `docker ps` on the source lists the names',
        code: 'CONTAINER_NOT_FOUND',
      },
    ];
  }
  const name = container.Name.replace(/^\//, '');
  const state = container.State.Paused ? 'paused' : (container.State.Status ?? 'unknown');
  const checks: Check[] = [
    {
      host: 'source',
      name: 'container running',
      status:
        container.State.Running && !container.State.Paused && !container.State.Restarting ? 'pass' : 'fail',
      observed: state,
      expected: 'running (not paused, not restarting)',
      remedy: `start or unpause ${name} on the source first; a paused container may be another migration in progress`,
      code: 'CONTAINER_NOT_RUNNING',
    },
    {
      host: 'target',
      name: 'container name free',
      status: facts.targetNameTaken ? 'fail' : 'pass',
      observed: facts.targetNameTaken ? `"${name}" exists` : `"${name}" is free`,
      expected: 'no container of that name on the target',
      remedy: `remove or rename the target's container "${name}" (docker rm / docker rename)`,
      code: 'TARGET_NAME_TAKEN',
    },
  ];
  const runtime = container.HostConfig.Runtime || 'runc';
  checks.push({
    host: 'source',
    name: 'container runtime',
    status: runtime === 'runc' ? 'pass' : 'fail',
    observed: runtime,
    expected: 'runc',
    remedy: 'recreate the container with --runtime runc: the checkpoint is taken with runc',
    code: 'RUNTIME_UNSUPPORTED',
  });
  const driver = container.GraphDriver?.Name ?? 'unknown';
  checks.push({
    host: 'source',
    name: 'container storage',
    status: driver === 'overlay2' && container.GraphDriver?.Data?.UpperDir ? 'pass' : 'fail',
    observed: driver,
    expected: 'overlay2 with an upper directory',
    remedy: 'use the overlay2 storage driver: the writable layer is moved from its upper directory',
    code: 'STORAGE_DRIVER_UNSUPPORTED',
  });
  const devices =
    (container.HostConfig.Devices?.length ?? 0) + (container.HostConfig.DeviceRequests?.length ?? 0);
  checks.push({
    host: 'source',
    name: 'devices attached',
    status: devices === 0 ? 'pass' : 'fail',
    observed: devices === 0 ? 'none' : `${devices} device(s) or GPU request(s)`,
    expected: 'none',
    remedy: 'CRIU cannot move device or GPU state; stop using the device or migrate the job another way',
    code: 'CONTAINER_HAS_DEVICES',
  });
  return checks;
}
