import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAction } from './run-action.js';
import { loadTestbed, sshInputs, type Testbed } from './testbed.js';

// The stable code of a refusal reaches the three places an operator looks: the error
// annotation, the job summary and the error-code output (docs/errors.md explains each code).
let bed: Testbed;

beforeAll(() => {
  bed = loadTestbed();
});

/** The ::error:: annotation lines @actions/core wrote to stdout. */
function annotations(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('::error'));
}

describe('error-code', () => {
  it('names a connection refusal (before any mode reports) in the annotation, summary and output', async () => {
    const host2Only = readFileSync(bed.knownHostsPath, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith(bed.host2.replace(/^.*@/, '').replace(/:22$/, ' ')))
      .join('\n');
    const run = await runAction({
      mode: 'migrate',
      container: 'e2e-error-code',
      source: bed.host1,
      target: bed.host2,
      'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
      'known-hosts': host2Only,
      'upload-artifact': 'false',
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('HOST_KEY_UNKNOWN');
    expect(annotations(run.stdout)[0]).toMatch(/^::error::HOST_KEY_UNKNOWN: /);
    expect(run.summary).toMatch(/<code>HOST_KEY_UNKNOWN<\/code>/);
    expect(run.summary).toMatch(/What to do(?:: |<\/td><td>)run `ssh-keyscan/);
  });

  it('names a failed preflight check in the annotation, summary and output', async () => {
    // migrator is not root, and without sudo: true nothing makes it root.
    const run = await runAction({
      mode: 'preflight',
      container: 'e2e-error-code',
      source: bed.host1.replace(/^[^@]+@/, 'migrator@'),
      target: bed.host2,
      ...sshInputs(bed),
      'upload-artifact': 'false',
    });
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('NOT_ROOT');
    expect(annotations(run.stdout)[0]).toMatch(/NOT_ROOT: \[source\] runs as root: migrator \(uid 1500\)/);
    expect(run.summary).toMatch(/<code>NOT_ROOT<\/code><\/a>: log in as root, or set sudo: true/);
  });

  it('refuses a non-root login without sudo right after connecting, in every mode that changes hosts', async () => {
    const migrator = (destination: string): string => destination.replace(/^[^@]+@/, 'migrator@');
    const key = readFileSync(bed.sshKeyPath, 'utf8');
    const knownHosts = readFileSync(bed.knownHostsPath, 'utf8');
    const runs = {
      migrate: { source: migrator(bed.host1), target: bed.host2 },
      checkpoint: { source: migrator(bed.host1), 'store-host': bed.host3 },
      restore: { target: migrator(bed.host2), 'store-host': bed.host3 },
    };
    for (const [mode, hosts] of Object.entries(runs)) {
      const run = await runAction({
        mode,
        container: 'e2e-error-code',
        ...hosts,
        'ssh-key': key,
        'known-hosts': knownHosts,
        'upload-artifact': 'false',
      });
      expect(run.exitCode, `${mode}: ${run.stdout}`).not.toBe(0);
      expect(run.outputs['error-code'], mode).toBe('NOT_ROOT');
      expect(annotations(run.stdout)[0], mode).toMatch(
        /^::error::NOT_ROOT: migrator is not root \(uid 1500\) and sudo is false/,
      );
      expect(run.summary, mode).toMatch(/NOT_ROOT/);
      // Nothing was written as the login: it never got as far as the lock.
      expect(run.stdout, mode).not.toMatch(/Permission denied/);
    }
  });
});
