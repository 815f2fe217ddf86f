import { describe, expect, it } from 'vitest';
import { initFirst } from '../../src/engine/docker/docker-cli.js';

describe('initFirst', () => {
  it("puts the container's init first even when a child has the lower PID (PIDs wrap)", () => {
    const top = [
      'PID                 PPID                COMMAND',
      '301                 32700               sleep 0.1',
      '32700               32650               sh -c i=0; while :; do sleep 0.1; done',
      '32710               32700               tail -f /dev/null',
    ].join('\n');
    expect(initFirst(top)).toEqual([
      'sh -c i=0; while :; do sleep 0.1; done',
      'sleep 0.1',
      'tail -f /dev/null',
    ]);
  });

  it('gives nothing for a container without processes', () => {
    expect(initFirst('PID                 PPID                COMMAND\n')).toEqual([]);
  });
});
