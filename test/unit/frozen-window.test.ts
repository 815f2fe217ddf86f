import { describe, expect, it } from 'vitest';
import { countCommands } from '../../src/host/counting.js';
import type { Host } from '../../src/host/host.js';
import { FrozenWindow } from '../../src/report/frozen-window.js';

describe('FrozenWindow', () => {
  it('gives each step the time since the previous mark, splits measured parts out, counts commands inside', () => {
    let now = 1000;
    const commands = [900, 1000, 1100, 1500, 2600];
    const window = new FrozenWindow(() => now, 1000, commands);
    now = 1400;
    window.mark('checkpoint');
    window.split('pause', 'checkpoint', 100);
    window.split('dump', 'checkpoint', 250);
    now = 1700;
    window.mark('transfer');
    now = 2700;
    window.markAt('restore', 2500);
    expect(window.toRecord()).toEqual({
      pause: 100,
      dump: 250,
      checkpoint: 50,
      transfer: 300,
      restore: 800,
      commands: 3,
    });
    expect(window.describe()).toBe(
      'frozen window: pause 100 ms, dump 250 ms, checkpoint 50 ms, transfer 300 ms, restore 800 ms; 3 commands on the hosts',
    );
  });

  it('never splits more than the step had, and ignores a step it does not have', () => {
    let now = 0;
    const window = new FrozenWindow(() => now, 0, []);
    now = 100;
    window.mark('checkpoint');
    window.split('pause', 'checkpoint', 500);
    window.split('dump', 'nothing', 5);
    expect(window.toRecord()).toEqual({ pause: 100, checkpoint: 0, commands: 0 });
  });
});

describe('countCommands', () => {
  it('notes every run and spawn, and passes them on unchanged', async () => {
    const seen: string[] = [];
    const host = {
      role: 'source',
      address: 'root@127.0.0.2:22',
      run: async (command: string) => {
        seen.push(`run ${command}`);
        return { exitCode: 0, stdout: 'ok', stderr: '' };
      },
      spawn: async (command: string) => {
        seen.push(`spawn ${command}`);
        throw new Error('not here');
      },
      close: async () => {},
    } satisfies Host;
    let count = 0;
    const counted = countCommands(host, () => {
      count++;
    });
    expect(counted.address).toBe(host.address);
    expect(counted.tunnels).toBeUndefined();
    expect((await counted.run('true')).stdout).toBe('ok');
    await expect(counted.spawn('sleep 1')).rejects.toThrow('not here');
    expect(count).toBe(2);
    expect(seen).toEqual(['run true', 'spawn sleep 1']);
  });
});
