import { inspectNetwork } from '../engine/docker/networks.js';
import { errorMessage } from '../errors.js';
import type { Check } from '../policy/compatibility.js';
import {
  memberAddresses,
  type NetworkSpec,
  networkDifferences,
  peerConnectionChecks,
  projectNetworks,
} from '../policy/compose-unit.js';
import { containerNameOf, type Unit } from '../policy/selection.js';
import { type GateContext, runGate, type SharedHostFacts } from './preflight.js';

export interface UnitGate {
  /** Every member's checks (named after the member), the unit's own first. */
  checks: Check[];
  /** The project's networks as the source defines them, and whether the target must get them. */
  networks: { spec: NetworkSpec; create: boolean }[];
  memoryBytes?: number;
  layerBytes?: number;
}

/**
 * The gate of a compose unit, read-only: its networks on both hosts, each member through the
 * gate of one container (a missing project network is not a problem: the run creates it), and
 * the connections between members. Preflight over a selection and migrate mode run the same.
 */
export async function gateComposeUnit(
  ctx: GateContext,
  unit: Unit,
  shared: SharedHostFacts,
): Promise<UnitGate> {
  const own: Check[] = [];
  const networks: UnitGate['networks'] = [];
  const names = projectNetworks(unit.members);
  for (const name of names) {
    const check = {
      host: 'target' as const,
      name: `project network ${name}`,
      expected: 'absent, or the same network',
    };
    try {
      const spec = await inspectNetwork(ctx.source, name, 'preflight');
      if (!spec) {
        own.push({
          ...check,
          host: 'source',
          status: 'fail',
          observed: 'gone from the source',
          code: 'NETWORK_MISSING',
        });
        continue;
      }
      const there = await inspectNetwork(ctx.target, name, 'preflight');
      const differences = there ? networkDifferences(spec, there) : [];
      if (differences.length > 0) {
        own.push({
          ...check,
          status: 'fail',
          observed: `the target has a network ${name} with ${differences.join(', ')}`,
          remedy: `remove that network on the target (docker network rm ${name}) if nothing uses it, or move the project to another host`,
          code: 'COMPOSE_NETWORK_CONFLICT',
        });
      } else {
        own.push({
          ...check,
          status: 'pass',
          observed: there ? 'the same network exists' : 'absent: created by the run',
        });
      }
      networks.push({ spec, create: there === undefined });
    } catch (error) {
      own.push({ ...check, status: 'fail', observed: errorMessage(error), code: 'FACT_UNREADABLE' });
    }
  }
  const memberChecks: Check[] = [];
  const sockets = [];
  let memoryBytes = 0;
  let layerBytes = 0;
  let sized = true;
  for (const member of unit.members) {
    const name = containerNameOf(member);
    const gate = await runGate({ ...ctx, settings: { ...ctx.settings, container: member.Id } }, shared);
    for (const check of gate.checks) {
      // The run creates the project's networks before the members.
      if (
        check.code === 'NETWORK_MISSING' &&
        names.some((network) => check.observed.includes(`"${network}"`))
      )
        continue;
      memberChecks.push({ ...check, name: `${name}: ${check.name}` });
    }
    sockets.push({
      name,
      addresses: memberAddresses(member),
      ...(gate.facts.sourceProbe?.tcp ? { tcp: gate.facts.sourceProbe.tcp } : {}),
    });
    const memory = gate.facts.sourceProbe?.memory?.bytes;
    const layer = gate.facts.sourceProbe?.writableLayerBytes;
    if (memory === undefined || layer === undefined) sized = false;
    memoryBytes += memory ?? 0;
    layerBytes += layer ?? 0;
  }
  return {
    checks: [...peerConnectionChecks(sockets), ...own, ...memberChecks],
    networks,
    ...(sized ? { memoryBytes, layerBytes } : {}),
  };
}
