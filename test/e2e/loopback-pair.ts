import { expect } from 'vitest';
import { containerState } from './invariants.js';
import { onHost, type Testbed, waitForLog } from './testbed.js';

// A service and a client in the container's own process tree on one loopback TCP connection.
// The service echoes every line back (busybox nc -e cat, one connection). The client writes
// "n <i>" every 100 ms over that one connection and prints each reply; it never reconnects: when
// the connection ends, the container's first process prints CONNECTION LOST and exits 1.
export const LOOPBACK_PAIR = `sh -c 'nc -l -p 7000 -e cat & sleep 0.5; mkfifo /tmp/replies; (i=0; while :; do i=$((i+1)); echo "n $i"; sleep 0.1; done) | nc 127.0.0.1 7000 >/tmp/replies & while read -r line; do echo "reply $line"; done </tmp/replies; echo "CONNECTION LOST"; exit 1'`;

/** The numbers echoed back so far, in order. */
export function replies(logs: string): number[] {
  return [...logs.matchAll(/^reply n (\d+)$/gm)].map((m) => Number(m[1]));
}

/** Established (01) TCP sockets with port 7000 at either end, as "local-port>remote-port", sorted. */
export async function establishedPairs(bed: Testbed, host: string, name: string): Promise<string[]> {
  const tables = await onHost(bed, host, `docker exec ${name} cat /proc/net/tcp /proc/net/tcp6`);
  return tables
    .split('\n')
    .map((line) => /^\s*\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:([0-9A-F]{4}) 01 /.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && (m[1] === '1B58' || m[2] === '1B58'))
    .map((m) => `${Number.parseInt(m[1]!, 16)}>${Number.parseInt(m[2]!, 16)}`)
    .sort();
}

/** Starts the pair on `host` and returns its two ends once replies flow. */
export async function startLoopbackPair(bed: Testbed, host: string, name: string): Promise<string[]> {
  await onHost(bed, host, `docker run -d --name ${name} ${bed.image} ${LOOPBACK_PAIR}`);
  await waitForLog(bed, host, name, /^reply n 5$/m);
  const pairs = await establishedPairs(bed, host, name);
  // The client's end and the service's end of the one connection.
  expect(pairs).toHaveLength(2);
  return pairs;
}

/**
 * The same connection carries on where `host` runs the container: the same two ends (ports),
 * replies numbered on from `from` (the restore may repeat the last line the source printed, which
 * CRIU puts back into the stdout pipe), no gap, and the client never saw the connection end.
 */
export async function expectSameConnection(
  bed: Testbed,
  host: string,
  name: string,
  pairs: string[],
  from: number,
): Promise<void> {
  const logs = await waitForLog(bed, host, name, new RegExp(`^reply n ${from + 20}$`, 'm'), 20_000);
  expect(logs).not.toContain('CONNECTION LOST');
  const got = replies(logs);
  const first = got[0]!;
  expect([from, from + 1]).toContain(first);
  got.forEach((n, i) => {
    expect(n).toBe(first + i);
  });
  expect(await establishedPairs(bed, host, name)).toEqual(pairs);
  expect(await containerState(bed, host, name)).toMatchObject({ Running: true, Paused: false });
}
