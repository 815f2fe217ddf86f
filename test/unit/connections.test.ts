import { describe, expect, it } from 'vitest';
import type { ProcessRow } from '../../src/engine/engine.js';
import { classifyConnections, execHeldConnections, execProcesses } from '../../src/policy/connections.js';
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
