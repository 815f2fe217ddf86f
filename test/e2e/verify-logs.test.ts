import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeFaults } from './faults.js';
import { expectRunningOnlyOn } from './invariants.js';
import { runAction } from './run-action.js';
import { containerLogs, loadTestbed, onHost, onHostResult, sshInputs, type Testbed } from './testbed.js';

// VERIFY_FAILED may show the restored container's last log lines: only in the job log, only
// when verify-show-logs allows it, never in the records the artifact is made of.
let bed: Testbed;
const name = 'e2e-verify-logs';
const leak = `DB_PASSWORD=hunter2-${Date.now().toString(36)}-leak`;

/** Every file the run wrote under RUNNER_TEMP (the artifact's records among them), as text. */
function recordsText(runnerTemp: string): { files: string[]; text: string } {
  const files = (readdirSync(runnerTemp, { recursive: true }) as string[])
    .map((entry) => join(runnerTemp, entry))
    .filter((path) => {
      try {
        readFileSync(path);
        return true;
      } catch {
        return false;
      }
    });
  return { files, text: files.map((path) => readFileSync(path, 'utf8')).join('\n') };
}

async function failVerify(show: boolean) {
  const run = await runAction({
    container: name,
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    // Never printed by the container: verification fails after 2 s, the run rolls back.
    'verify-log-pattern': '^never-printed-by-this-container$',
    'verify-timeout': '2',
    'verify-stable-seconds': '1',
    ...(show ? { 'verify-show-logs': 'true' } : {}),
  });
  expect(run.exitCode, run.stdout).not.toBe(0);
  expect(run.outputs['error-code']).toBe('VERIFY_FAILED');
  expect(run.outputs.status).toBe('rolled-back');
  await expectRunningOnlyOn(bed, bed.host1, name);
  const records = recordsText(run.runnerTemp);
  expect(records.files.some((path) => path.endsWith('metadata.json'))).toBe(true);
  expect(records.text).toContain('VERIFY_FAILED');
  expect(records.text).not.toContain(leak);
  return run;
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  // A container that keeps printing a secret-looking line, so the restored one prints it too.
  await onHost(
    bed,
    bed.host1,
    `docker run -d --name ${name} --entrypoint sh ${bed.image} -c 'while :; do echo ${leak}; sleep 0.3; done'`,
  );
  for (let i = 0; i < 100 && !(await containerLogs(bed, bed.host1, name)).includes(leak); i++)
    await new Promise((resolve) => setTimeout(resolve, 200));
  expect(await containerLogs(bed, bed.host1, name)).toContain(leak);
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

describe('VERIFY_FAILED and the container logs', () => {
  it('prints none of the container log lines without verify-show-logs, and says how to see them', async () => {
    const run = await failVerify(false);
    expect(run.stdout).toContain('VERIFY_FAILED');
    expect(`${run.stdout}\n${run.stderr}\n${run.summary}`).not.toContain(leak);
    expect(run.stdout).toContain('verify-show-logs: true');
  });

  it('prints them into the job log with verify-show-logs: true, and still not into the records', async () => {
    const run = await failVerify(true);
    expect(run.stdout).toContain(leak);
    expect(run.summary).not.toContain(leak);
  });
});
