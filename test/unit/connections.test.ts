import { describe, expect, it } from 'vitest';
import type { ProcessRow } from '../../src/engine/engine.js';
import {
  classifyConnections,
  connectionRefusal,
  execHeldConnections,
  execProcesses,
  judgeConnections,
  movesEstablished,
} from '../../src/policy/connections.js';
import { parseProcNet, parseSocketOwners } from '../../src/probe/parsers.js';

// A service on 7000 and a client connected to it over loopback (the IPv4 and the IPv4-mapped
// IPv6 tables, as busybox nc leaves them), and one connection to a peer on the bridge.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B126 0100007F:1B58 01 00000000:00000000 00:00000000 00000000     0        0 608585 2 000000001234d55f 20 0 0 18 -1
   1: 020011AC:E0B8 030011AC:2328 01 00000000:00000000 00:00000000 00000000     0        0 323987 1 00000000db6b74ea 20 0 0 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1B58 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 607700 1 0000000000c3652d 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1B58 0000000000000000FFFF00000100007F:B126 01 00000000:00000000 00:00000000 00000000     0        0 607712 1 0000000000c3652d 20 0 0 10 -1
`;

const rows = (...list: [number, number, string][]): ProcessRow[] =>
  list.map(([pid, ppid, args]) => ({ pid, ppid, args }));

describe('classifyConnections', () => {
  it('tells connections inside the container from those to outside peers, with their inodes', () => {
    const { inside, outside } = classifyConnections(parseProcNet(TCP));
    expect(inside.map((entry) => entry.inode)).toEqual([608585, 607712]);
    expect(outside.map((entry) => entry.inode)).toEqual([323987]);
  });
});

// The same tables without the outside peer: the service (pid 3264, inode 607712) and the client
// (pid 3270, inode 608585) are the init's (3140) children.
const INSIDE_ONLY = TCP.split('\n')
  .filter((line) => !line.includes('020011AC'))
  .join('\n');
const TREE = rows(
  [3140, 3102, 'sh -c service'],
  [3264, 3140, 'nc -l -p 7000'],
  [3270, 3140, 'nc 127.0.0.1 7000'],
);
const OWNERS = parseSocketOwners('3264 607712\n3270 608585\n3264 607700\n');

describe('judgeConnections', () => {
  it("moves a loopback pair established when the init's descendants hold both ends", () => {
    const verdict = judgeConnections({
      tcp: parseProcNet(INSIDE_ONLY),
      processes: TREE,
      owners: OWNERS,
      initPid: 3140,
    });
    expect(verdict.inside).toHaveLength(2);
    expect(verdict.unowned).toEqual([]);
    expect(verdict.heldByExec).toEqual([]);
    expect(movesEstablished(verdict)).toBe(true);
    expect(connectionRefusal(verdict)).toBeUndefined();
  });

  it('refuses an outside peer with TCP_CONNECTIONS_OPEN and keeps nothing established', () => {
    const verdict = judgeConnections({
      tcp: parseProcNet(TCP),
      processes: TREE,
      owners: OWNERS,
      initPid: 3140,
    });
    expect(movesEstablished(verdict)).toBe(false);
    expect(connectionRefusal(verdict)).toMatchObject({
      code: 'TCP_CONNECTIONS_OPEN',
      observed: '1 to outside peers: 172.17.0.2:57528 ↔ 172.17.0.3:9000',
    });
  });

  it('refuses a pair one end of which a docker exec process holds, naming it', () => {
    const table = [...TREE.filter((row) => row.pid !== 3270), ...rows([5000, 3102, 'nc 127.0.0.1 7000'])];
    const owners = parseSocketOwners('3264 607712\n5000 608585\n');
    const verdict = judgeConnections({
      tcp: parseProcNet(INSIDE_ONLY),
      processes: table,
      owners,
      initPid: 3140,
    });
    expect(movesEstablished(verdict)).toBe(false);
    expect(verdict.unowned).toEqual([]);
    expect(connectionRefusal(verdict)).toMatchObject({
      code: 'EXEC_SESSION_CONNECTED',
      observed: expect.stringMatching(
        /^pid 5000 "nc 127\.0\.0\.1 7000" holds 127\.0\.0\.1:45350 ↔ 127\.0\.0\.1:7000/,
      ),
    });
  });

  it('refuses an end nobody holds (not accepted yet) and owners it could not read', () => {
    const owners = parseSocketOwners('3270 608585\n');
    const unaccepted = judgeConnections({
      tcp: parseProcNet(INSIDE_ONLY),
      processes: TREE,
      owners,
      initPid: 3140,
    });
    expect(unaccepted.unowned.map((entry) => entry.inode)).toEqual([607712]);
    expect(connectionRefusal(unaccepted)?.code).toBe('TCP_CONNECTIONS_OPEN');
    const unknown = judgeConnections({ tcp: parseProcNet(INSIDE_ONLY), initPid: 3140 });
    expect(unknown.ownersUnknown).toBe(true);
    expect(movesEstablished(unknown)).toBe(false);
    expect(connectionRefusal(unknown)?.observed).toMatch(/could not be read/);
  });

  it('has nothing to move or refuse without established connections', () => {
    const verdict = judgeConnections({ tcp: [] });
    expect(movesEstablished(verdict)).toBe(false);
    expect(connectionRefusal(verdict)).toBeUndefined();
  });
});

describe('execProcesses', () => {
  it("finds the processes that are not the init's descendants, whatever the listing order", () => {
    const table = rows(
      [3594, 3140, 'sh counter'],
      [3140, 3102, 'sh counter'],
      [4021, 3594, 'sleep 0.1'],
      [5000, 3102, 'sleep 600'],
      [5001, 5000, 'sleep 1'],
    );
    expect(execProcesses(3140, table).map((row) => row.pid)).toEqual([5000, 5001]);
    expect(execProcesses(undefined, table)).toEqual([]);
  });
});

describe('execHeldConnections', () => {
  it('names the exec process holding one end of an inside connection', () => {
    const { inside } = classifyConnections(parseProcNet(TCP));
    const owners = parseSocketOwners('3264 607712\n5000 608585\nnot a line\n');
    const exec = rows([5000, 3102, 'nc 127.0.0.1 7000']);
    const held = execHeldConnections(inside, owners, exec);
    expect(held.map(({ process, entry }) => [process.pid, entry.inode])).toEqual([[5000, 608585]]);
    expect(execHeldConnections(inside, owners, [])).toEqual([]);
  });
});
