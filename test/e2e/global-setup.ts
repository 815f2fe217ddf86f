import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ACTION_NODE, DIST_ENTRY } from './run-action.js';
import { loadTestbed, TESTBED_ENV, type Testbed } from './testbed.js';

const root = resolve(import.meta.dirname, '../..');

/** Every host of the bed whose env file is `envFile` is alive. */
export function hostsRunning(envFile = TESTBED_ENV): boolean {
  if (!existsSync(envFile)) return false;
  const env = readFileSync(envFile, 'utf8');
  // A bed from before the non-root login: up.sh adds it to the running hosts.
  if (!/^TESTBED_SUDO_USER=/m.test(env)) return false;
  const pids = [...env.matchAll(/^TESTBED_HOST\d+_PID=(\d+)$/gm)].map((m) => Number(m[1]));
  const hosts = [...env.matchAll(/^TESTBED_HOST\d+=/gm)].length;
  return (
    // At least two docker hosts and the checkpoint store; an older bed without the store is brought up again.
    hosts >= 3 &&
    pids.length === hosts &&
    pids.every((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    })
  );
}

/** Brings the test bed up when it is not, and takes down only what it brought up. */
export default function setup(): () => void {
  if (!existsSync(DIST_ENTRY)) throw new Error(`${DIST_ENTRY} is missing: run npm run build`);
  const version = execFileSync(ACTION_NODE, ['--version'], { encoding: 'utf8' }).trim();
  const from = process.env.ACTION_NODE
    ? 'ACTION_NODE'
    : 'the Node running the tests; set ACTION_NODE for another';
  console.log(`e2e: the bundled action runs under Node ${version} (${ACTION_NODE}, ${from})`);
  if (!version.startsWith('v24.')) {
    console.log('e2e: action.yml declares node24; results under another major may differ from a runner');
  }
  const startedHere = !hostsRunning();
  if (startedHere) execFileSync('bash', [resolve(root, 'test/testbed/up.sh')], { stdio: 'inherit' });
  return () => {
    if (startedHere && !process.env.TESTBED_KEEP) {
      execFileSync('bash', [resolve(root, 'test/testbed/down.sh')], { stdio: 'inherit' });
    }
  };
}

/**
 * A variant bed of its own script (test/testbed/<script> up|down|env), for one test file:
 * `up()` in beforeAll starts it unless it runs already, `down()` in afterAll stops only
 * what `up()` started (and nothing with TESTBED_KEEP).
 */
export function variantBed(script: string): { envFile: string; up(): Testbed; down(): void } {
  const run = (action: 'up' | 'down' | 'env') =>
    execFileSync('bash', [resolve(root, 'test/testbed', script), action], {
      stdio: action === 'env' ? ['ignore', 'pipe', 'inherit'] : 'inherit',
      encoding: 'utf8',
    });
  const envFile = String(run('env')).trim();
  let startedHere = false;
  return {
    envFile,
    up() {
      startedHere = !hostsRunning(envFile);
      if (startedHere) run('up');
      return loadTestbed(envFile);
    },
    down() {
      if (startedHere && !process.env.TESTBED_KEEP) run('down');
    },
  };
}
