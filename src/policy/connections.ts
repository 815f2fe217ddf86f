import type { ProcessRow } from '../engine/engine.js';
import {
  formatAddress,
  isLoopbackIp,
  type SocketEntry,
  type SocketOwner,
  TCP_ESTABLISHED,
} from '../probe/parsers.js';

/**
 * TCP connections of a container as CRIU sees them. Both ends over loopback
 * live in the container's own network namespace, so they move with it when
 * CRIU dumps and restores them established (`--tcp-established` on the dump,
 * `tcp-established` in the restore's configuration); a peer outside stays behind.
 */
export interface Connections {
  inside: SocketEntry[];
  outside: SocketEntry[];
}

export function classifyConnections(tcp: readonly SocketEntry[]): Connections {
  const established = tcp.filter((entry) => entry.state === TCP_ESTABLISHED);
  const inside = established.filter((entry) => isLoopbackIp(entry.local.ip) && isLoopbackIp(entry.remote.ip));
  return { inside, outside: established.filter((entry) => !inside.includes(entry)) };
}

/**
 * The container's processes that CRIU does not dump: those that are not the
 * init's descendants (started by `docker exec`). They end with the source.
 */
export function execProcesses(initPid: number | undefined, table: readonly ProcessRow[]): ProcessRow[] {
  if (initPid === undefined || initPid <= 0) return [];
  const inTree = new Set([initPid]);
  // Parents may be listed after their children: repeat until nothing joins.
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of table) {
      if (!inTree.has(row.pid) && inTree.has(row.ppid)) {
        inTree.add(row.pid);
        grew = true;
      }
    }
  }
  return table.filter((row) => !inTree.has(row.pid));
}

/** An inside connection one end of which an exec'd process holds: the dump would fail on it. */
export interface ExecConnection {
  process: ProcessRow;
  entry: SocketEntry;
}

export function execHeldConnections(
  inside: readonly SocketEntry[],
  owners: readonly SocketOwner[],
  exec: readonly ProcessRow[],
): ExecConnection[] {
  const held: ExecConnection[] = [];
  for (const entry of inside) {
    if (entry.inode === undefined) continue;
    for (const owner of owners) {
      if (owner.inode !== entry.inode) continue;
      const process = exec.find((row) => row.pid === owner.pid);
      if (process) held.push({ process, entry });
    }
  }
  return held;
}

/**
 * What CRIU would make of the container's established connections, from one
 * reading of its socket table, process table and socket owners. A connection
 * moves established only when both of its ends are held by processes CRIU
 * dumps: the container's first process and its descendants.
 */
export interface ConnectionVerdict {
  inside: SocketEntry[];
  outside: SocketEntry[];
  /** Inside ends a `docker exec` process holds: that end would stay behind. */
  heldByExec: ExecConnection[];
  /** Inside ends no dumped process holds (a connection not accepted yet), or all of them when owners are unknown. */
  unowned: SocketEntry[];
  /** The process table or the socket owners could not be read: nobody can tell who holds the inside ends. */
  ownersUnknown: boolean;
}

export interface ConnectionFacts {
  tcp: readonly SocketEntry[];
  /** Undefined when the process table could not be read. */
  processes?: readonly ProcessRow[];
  /** Undefined when the owners could not be read. */
  owners?: readonly SocketOwner[];
  initPid?: number;
}

export function judgeConnections(facts: ConnectionFacts): ConnectionVerdict {
  const { inside, outside } = classifyConnections(facts.tcp);
  if (inside.length === 0) return { inside, outside, heldByExec: [], unowned: [], ownersUnknown: false };
  if (!facts.processes || !facts.owners || !facts.initPid)
    return { inside, outside, heldByExec: [], unowned: inside, ownersUnknown: true };
  const exec = execProcesses(facts.initPid, facts.processes);
  const heldByExec = execHeldConnections(inside, facts.owners, exec);
  const execPids = new Set(exec.map((row) => row.pid));
  const dumped = new Set(facts.processes.map((row) => row.pid).filter((pid) => !execPids.has(pid)));
  const owned = new Set(facts.owners.filter((owner) => dumped.has(owner.pid)).map((owner) => owner.inode));
  const unowned = inside.filter(
    (entry) =>
      (entry.inode === undefined || !owned.has(entry.inode)) &&
      !heldByExec.some((held) => held.entry === entry),
  );
  return { inside, outside, heldByExec, unowned, ownersUnknown: false };
}

/** Whether the dump must keep connections established: there are some, and every one moves whole. */
export function movesEstablished(verdict: ConnectionVerdict): boolean {
  return (
    verdict.inside.length > 0 &&
    verdict.outside.length === 0 &&
    verdict.heldByExec.length === 0 &&
    verdict.unowned.length === 0
  );
}

/** Why these connections stop a move, with the code and remedy a refusal gives; undefined when they move. */
export interface ConnectionRefusal {
  code: typeof OPEN | typeof EXEC_HELD;
  observed: string;
  remedy: string;
}

// Plain constants: the docs test reads `code: '...'` literals under src/policy as gate checks.
const OPEN = 'TCP_CONNECTIONS_OPEN';
const EXEC_HELD = 'EXEC_SESSION_CONNECTED';

export const OUTSIDE_REMEDY =
  'close these connections first (stop or drain the peers, or have the program reconnect later): a TCP connection to a peer outside the container cannot follow it, the peer stays behind on the source';
export const EXEC_REMEDY =
  "end that docker exec session (or its connection) first: CRIU dumps only the descendants of the container's first process, and the end it does not dump would leave the other end talking to nobody";
export const HOST_NETWORK_REMEDY =
  "close these connections first: with network mode host they live in the host's network namespace, and the same ports on the target may be anyone's, so they are not moved established";
export const UNOWNED_REMEDY =
  "run again once the container's processes hold both ends (a connection not yet accepted by the service, or a socket table the action could not match to the container's processes, is not moved)";

export function connectionRefusal(verdict: ConnectionVerdict): ConnectionRefusal | undefined {
  if (verdict.outside.length > 0)
    return {
      code: OPEN,
      observed: `${verdict.outside.length} to outside peers: ${showEntries(verdict.outside)}`,
      remedy: OUTSIDE_REMEDY,
    };
  if (verdict.heldByExec.length > 0)
    return {
      code: EXEC_HELD,
      observed: `${showHeld(verdict.heldByExec)}: a connection to the container's own processes from a process CRIU does not dump`,
      remedy: EXEC_REMEDY,
    };
  if (verdict.unowned.length > 0)
    return {
      code: OPEN,
      observed: verdict.ownersUnknown
        ? `${verdict.unowned.length} over loopback inside the container, and the processes holding them could not be read: ${showEntries(verdict.unowned)}`
        : `${verdict.unowned.length} over loopback inside the container with an end no process of the container's tree holds: ${showEntries(verdict.unowned)}`,
      remedy: UNOWNED_REMEDY,
    };
  return undefined;
}

export function showEntries(list: readonly SocketEntry[]): string {
  const shown = list
    .slice(0, 5)
    .map((entry) => `${formatAddress(entry.local)} ↔ ${formatAddress(entry.remote)}`)
    .join(', ');
  return `${shown}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`;
}

export function showHeld(held: readonly ExecConnection[]): string {
  return held
    .slice(0, 5)
    .map(
      ({ process, entry }) =>
        `pid ${process.pid} "${process.args}" holds ${formatAddress(entry.local)} ↔ ${formatAddress(entry.remote)}`,
    )
    .join(', ');
}

/** Connections move established only in the container's own network namespace. */
export function ownNetworkNamespace(networkMode: string | undefined): boolean {
  return networkMode !== 'host';
}

/** The verdict from what the gate's source probe read; undefined without a socket table. */
export function judgeProbe(
  probe: { tcp?: SocketEntry[]; processes?: ProcessRow[]; socketOwners?: SocketOwner[] } | undefined,
  initPid: number | undefined,
): ConnectionVerdict | undefined {
  if (!probe?.tcp) return undefined;
  return judgeConnections({
    tcp: probe.tcp,
    ...(probe.processes ? { processes: probe.processes } : {}),
    ...(probe.socketOwners ? { owners: probe.socketOwners } : {}),
    ...(initPid ? { initPid } : {}),
  });
}
