import type { ProcessRow } from '../engine/engine.js';
import { isLoopbackIp, type SocketEntry, type SocketOwner, TCP_ESTABLISHED } from '../probe/parsers.js';

/**
 * TCP connections of a container: both ends over loopback live in the
 * container's own network namespace; a peer outside stays behind on the source.
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
