import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initFirst, killScript } from '../../src/engine/docker/docker-cli.js';

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

describe('killScript', () => {
  /**
   * Runs the script with a `docker` stand-in that lists `pids` for a paused container, and a
   * `kill` that notes each call before the real one: the log is the order of events.
   */
  function runKill(paused: boolean | 'unknown', pids: number[]): { log: string[]; status: number | null } {
    const dir = mkdtempSync(join(tmpdir(), 'kill-script-'));
    const log = join(dir, 'log');
    writeFileSync(
      join(dir, 'docker'),
      `#!/bin/sh
case "$1 $2" in
"container inspect") ${paused === 'unknown' ? 'exit 1' : `echo ${paused}; exit 0`} ;;
"top "*) echo top >>${log}; printf 'PID\\n${pids.join('\\n')}\\n'; exit 0 ;;
"kill "*) echo "docker kill" >>${log}; exit 0 ;;
esac
exit 1
`,
    );
    chmodSync(join(dir, 'docker'), 0o755);
    const noted = `kill() { echo "kill $*" >>${log}; command kill "$@"; }\n${killScript('abc')}`;
    const result = spawnSync('sh', ['-c', noted], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    rmSync(dir, { recursive: true, force: true });
    return { log: lines, status: result.status };
  }

  it("sends SIGKILL to every process of a paused container before Docker's kill thaws it", async () => {
    const sleepers = [spawn('sleep', ['60']), spawn('sleep', ['60'])];
    const ended = sleepers.map(
      (child) =>
        new Promise<string | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal))),
    );
    try {
      const pids = sleepers.map((child) => child.pid ?? 0);
      const { log, status } = runKill(true, pids);
      expect(status).toBe(0);
      expect(log).toEqual(['top', ...pids.map((pid) => `kill -KILL ${pid}`), 'docker kill']);
      expect(await Promise.all(ended)).toEqual(['SIGKILL', 'SIGKILL']);
    } finally {
      for (const child of sleepers) child.kill('SIGKILL');
    }
  });

  it('leaves a running container to docker kill alone', () => {
    const { log, status } = runKill(false, []);
    expect(status).toBe(0);
    expect(log).toEqual(['docker kill']);
  });

  it('kills nothing when the state cannot be read (a paused container would be thawed unsignalled)', () => {
    const { log, status } = runKill('unknown', []);
    expect(status).toBe(1);
    expect(log).toEqual([]);
  });
});
