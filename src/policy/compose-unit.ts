import type { ContainerInspect } from '../engine/docker/inspect.js';
import { MigrationError } from '../errors.js';
import { formatAddress, type SocketEntry, TCP_ESTABLISHED } from '../probe/parsers.js';
import type { Check } from './compatibility.js';
import { COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL, containerNameOf } from './selection.js';

/** The label where compose records a service's depends_on: `svc:condition:restart,...`. */
export const COMPOSE_DEPENDS_LABEL = 'com.docker.compose.depends_on';
const PROJECT = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const CONTAINER = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PREFIX = 'compose:';
const NOT_USER_NETWORKS = new Set(['', 'default', 'bridge', 'host', 'none']);

/** What the unit input names: a compose project (compose:<project>) or one container. */
export type UnitRef = { kind: 'compose'; project: string } | { kind: 'container'; name: string };

export function parseUnitRef(text: string): UnitRef {
  const value = text.trim();
  if (value.startsWith(PREFIX)) {
    const project = value.slice(PREFIX.length);
    if (!PROJECT.test(project)) throw badUnit(value, 'names no valid compose project');
    return { kind: 'compose', project };
  }
  if (!CONTAINER.test(value)) throw badUnit(value, 'is neither compose:<project> nor a container name');
  return { kind: 'container', name: value };
}

function badUnit(value: string, why: string): MigrationError {
  return new MigrationError('INPUT_INVALID', `unit: "${value}" ${why}`, {
    step: 'inputs',
    remedy:
      'use an entry of the cutover gate matrix output (its unit field): compose:<project> or a container name',
  });
}

/** Where a unit's run keeps its records (checkpoint name, artifact): one name for the whole project. */
export function composeRecordName(project: string): string {
  return `compose-${project}`;
}

export function serviceOf(member: ContainerInspect): string {
  return member.Config.Labels?.[COMPOSE_SERVICE_LABEL] ?? containerNameOf(member);
}

/** Services a member depends on, as compose recorded them (`redis:service_started:false,db:...`). */
export function dependsOn(member: ContainerInspect): string[] {
  const label = member.Config.Labels?.[COMPOSE_DEPENDS_LABEL] ?? '';
  return label
    .split(',')
    .map((entry) => entry.split(':')[0]?.trim() ?? '')
    .filter(Boolean);
}

/**
 * Pure: the members in the order compose starts them (a dependency before what depends on it;
 * otherwise by name), and for each member the members it waits for. A dependency outside
 * the unit is ignored (nothing of the unit can wait for it); a cycle is refused.
 */
export function restoreOrder(members: readonly ContainerInspect[]): {
  order: string[];
  waitsFor: Map<string, string[]>;
} {
  const byService = new Map<string, string[]>();
  for (const member of members) {
    const service = serviceOf(member);
    byService.set(service, [...(byService.get(service) ?? []), containerNameOf(member)]);
  }
  const waitsFor = new Map<string, string[]>();
  for (const member of members) {
    const needs = dependsOn(member).flatMap((service) => byService.get(service) ?? []);
    waitsFor.set(containerNameOf(member), [...new Set(needs)].sort());
  }
  const order: string[] = [];
  const pending = new Set([...waitsFor.keys()].sort());
  // Each pass places at least one member or finds a cycle: at most members.length passes.
  for (let pass = 0; pass <= members.length && pending.size > 0; pass += 1) {
    const ready = [...pending].filter((name) =>
      (waitsFor.get(name) ?? []).every((need) => order.includes(need)),
    );
    if (ready.length === 0) break;
    for (const name of ready) {
      order.push(name);
      pending.delete(name);
    }
  }
  if (pending.size > 0) {
    throw new MigrationError(
      'COMPOSE_DEPENDENCY_CYCLE',
      `the depends_on labels of ${[...pending].join(', ')} form a cycle: no order to restore them in`,
      {
        step: 'preflight',
        remedy: `check the ${COMPOSE_DEPENDS_LABEL} labels of these containers (docker inspect); compose itself refuses such a project, so they were changed by hand`,
      },
    );
  }
  return { order, waitsFor };
}

/** The user-defined networks the members are on (each created on the target before the members). */
export function projectNetworks(members: readonly ContainerInspect[]): string[] {
  const names = new Set<string>();
  for (const member of members) {
    for (const network of Object.keys(member.NetworkSettings.Networks)) {
      if (!NOT_USER_NETWORKS.has(network)) names.add(network);
    }
  }
  return [...names].sort();
}

/** A network as `docker network inspect` describes it: what the target's copy must match. */
export interface NetworkSpec {
  name: string;
  driver: string;
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  ipam: { subnet?: string; gateway?: string; ipRange?: string }[];
  options: Record<string, string>;
  labels: Record<string, string>;
}

/** Pure: `docker network create` arguments for the same network on the target. */
export function networkCreateArgs(spec: NetworkSpec): string[] {
  const args = ['network', 'create', '--driver', spec.driver];
  for (const pool of spec.ipam) {
    if (pool.subnet) args.push('--subnet', pool.subnet);
    if (pool.gateway) args.push('--gateway', pool.gateway);
    if (pool.ipRange) args.push('--ip-range', pool.ipRange);
  }
  for (const [key, value] of Object.entries(spec.options).sort()) args.push('--opt', `${key}=${value}`);
  for (const [key, value] of Object.entries(spec.labels).sort()) args.push('--label', `${key}=${value}`);
  if (spec.internal) args.push('--internal');
  if (spec.attachable) args.push('--attachable');
  if (spec.enableIPv6) args.push('--ipv6');
  args.push(spec.name);
  return args;
}

/** Pure: how a network already on the target differs from the source's (empty when it is the same). */
export function networkDifferences(source: NetworkSpec, target: NetworkSpec): string[] {
  const differences: string[] = [];
  if (source.driver !== target.driver) differences.push(`driver ${target.driver}, not ${source.driver}`);
  const pools = (spec: NetworkSpec): string =>
    spec.ipam
      .map((pool) => `${pool.subnet ?? 'any subnet'}${pool.gateway ? ` via ${pool.gateway}` : ''}`)
      .join(', ') || 'no address pool';
  if (pools(source) !== pools(target)) differences.push(`subnet ${pools(target)}, not ${pools(source)}`);
  if (source.internal !== target.internal) differences.push(`internal ${target.internal}`);
  const project = (spec: NetworkSpec): string | undefined => spec.labels[COMPOSE_PROJECT_LABEL];
  if (project(source) !== project(target))
    differences.push(`compose project ${project(target) ?? 'none'}, not ${project(source) ?? 'none'}`);
  return differences;
}

export interface MemberSockets {
  name: string;
  /** The member's addresses on the project's networks. */
  addresses: string[];
  /** Its TCP sockets (all states), or undefined when they could not be read. */
  tcp?: readonly SocketEntry[];
}

/**
 * Pure: established TCP connections between two members of the unit, each named by both
 * ends. They are not kept yet (that needs CRIU's tcp-established on both ends), so each
 * blocks the move.
 */
export function peerConnectionChecks(members: readonly MemberSockets[]): Check[] {
  const owner = new Map<string, string>();
  for (const member of members) for (const address of member.addresses) owner.set(address, member.name);
  const found: string[] = [];
  for (const member of members) {
    for (const entry of member.tcp ?? []) {
      if (entry.state !== TCP_ESTABLISHED) continue;
      const peer = owner.get(entry.remote.ip);
      if (peer === undefined || peer === member.name) continue;
      // Each connection appears in both members' tables: name it once, from the lower name.
      if (member.name > peer && members.some((m) => m.name === peer && m.tcp !== undefined)) continue;
      found.push(`${member.name} ${formatAddress(entry.local)} ↔ ${peer} ${formatAddress(entry.remote)}`);
    }
  }
  const name = 'tcp connections between members';
  const expected = 'no established TCP connection between members of the unit';
  if (found.length === 0) return [{ host: 'source', name, status: 'pass', observed: 'none', expected }];
  return [
    {
      host: 'source',
      name,
      status: 'fail',
      observed: found.join('; '),
      expected,
      remedy:
        'close these connections before the move (have the client reconnect per request, or stop it briefly): connections between members are not kept across a move yet',
      code: 'COMPOSE_PEER_CONNECTED',
    },
  ];
}

/** Pure: a member's addresses on user networks, as the source's Docker reports them. */
export function memberAddresses(member: ContainerInspect): string[] {
  return Object.entries(member.NetworkSettings.Networks)
    .filter(([network]) => !NOT_USER_NETWORKS.has(network))
    .map(([, endpoint]) => endpoint.IPAddress ?? '')
    .filter(Boolean);
}

type MemberStatus = 'succeeded' | 'rolled-back' | 'refused' | 'resumed' | 'failed' | 'not started';

/**
 * Why a unit's run ended: the member that failed first says why (the others gave up because of
 * it), unless a cancellation or the run's timeout stopped every member alike: said as it is.
 */
export function unitFailure(
  first: MigrationError | undefined,
  memberErrors: readonly (MigrationError | undefined)[],
): MigrationError | undefined {
  const cause = first?.cause instanceof MigrationError ? first.cause : memberErrors.find((e) => e);
  return cause && (cause.code === 'CANCELLED' || cause.code === 'TIMEOUT') ? cause : (first ?? cause);
}

/**
 * A unit's status from its members': succeeded only when every member did; rolled back or
 * refused when every member's work was undone; failed when any member's undo did not finish.
 * `undoneWhenSucceeded`: a member that succeeded counts as undone (a unit checkpoint removes
 * the members' checkpoints again when the unit fails).
 */
export function unitStatus(
  statuses: readonly MemberStatus[],
  undoneWhenSucceeded = false,
): 'succeeded' | 'rolled-back' | 'refused' | 'failed' {
  const seen = new Set(statuses);
  if (!undoneWhenSucceeded && seen.size === 1 && seen.has('succeeded')) return 'succeeded';
  const undone = (s: MemberStatus) =>
    s === 'rolled-back' || s === 'refused' || (undoneWhenSucceeded && s === 'succeeded');
  if (![...seen].every(undone)) return 'failed';
  return seen.has('rolled-back') || (undoneWhenSucceeded && seen.has('succeeded'))
    ? 'rolled-back'
    : 'refused';
}
