import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostsRunning } from './global-setup.js';
import { runAction } from './run-action.js';
import { bedHost, loadTestbed, onHost, sshInputs, startCounter, type Testbed } from './testbed.js';

const root = resolve(import.meta.dirname, '../..');
const v2Bed = (action: 'up' | 'down' | 'env') =>
  execFileSync('bash', [resolve(root, 'test/testbed/cgroup2-bed.sh'), action], {
    stdio: action === 'env' ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  });
const envFile = String(v2Bed('env')).trim();
let startedHere = false;
let bed: Testbed;

beforeAll(() => {
  startedHere = !hostsRunning(envFile);
  if (startedHere) v2Bed('up');
  bed = loadTestbed(envFile);
});

afterAll(() => {
  if (startedHere && !process.env.TESTBED_KEEP) v2Bed('down');
});

describe('exp', () => {
  it('migrates v2 1->2', async () => {
    const a = bedHost(bed, 1).destination;
    const b = bedHost(bed, 2).destination;
    await startCounter(bed, a, 'v2-counter', { mb: 16 });
    const run = await runAction({
      mode: 'migrate',
      container: 'v2-counter',
      source: a,
      target: b,
      ...sshInputs(bed),
      'verify-timeout': '20',
      timeout: '10',
    });
    console.log(run.stdout);
    console.log(await onHost(bed, b, 'docker ps -a; ls /tmp'));
    expect(run.outputs.status).toBe('succeeded');
  });
});
