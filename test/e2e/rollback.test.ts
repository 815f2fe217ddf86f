import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  startCounter,
  type Testbed,
} from './testbed.js';

let bed: Testbed;
const name = 'e2e-rollback';

// A real restore failure on host 2: a criu in front of the real one deletes
// pstree.img from the copy containerd unpacks, so CRIU cannot restore.
const BREAK_RESTORE = `cat >/usr/local/sbin/criu <<'EOF'
#!/bin/sh
if [ "$1" = swrk ]; then
  d=$(ls -td /tmp/ctrd-checkpoint* 2>/dev/null | head -n 1)
  [ -n "$d" ] && rm -f "$d/pstree.img"
fi
exec /usr/sbin/criu "$@"
EOF
chmod +x /usr/local/sbin/criu`;

beforeAll(() => {
  bed = loadTestbed();
});

afterAll(async () => {
  await onHostResult(bed, bed.host2, 'rm -f /usr/local/sbin/criu');
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
});

describe('rollback after a failed restore', () => {
  it('resumes the source where it stopped and leaves nothing on the target', async () => {
    await onHostResult(bed, bed.host2, 'docker ps -aq | xargs -r docker rm -f; rm -rf /tmp/ctrd-checkpoint*');
    await startCounter(bed, bed.host1, name, { mb: 16 });
    const imagesBefore = await onHost(bed, bed.host2, 'docker images -q | sort');
    await onHost(bed, bed.host2, BREAK_RESTORE);

    const run = await runAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
    });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.stdout).toMatch(/RESTORE_FAILED: the target could not restore the checkpoint/);
    expect(run.stdout).toContain(`step restore on target ${bed.host2}`);
    expect(run.stdout).toMatch(/OCI runtime restore failed/);
    expect(run.stdout).toContain('rollback: resumed the source container where it was frozen');
    expect(run.summary).toContain('RESTORE_FAILED');

    // The source runs on: same process (token), numbers continue, never restarted.
    const frozenLines = parseCounter(await containerLogs(bed, bed.host1, name));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const lines = parseCounter(await containerLogs(bed, bed.host1, name));
    expect(lines.length).toBeGreaterThan(frozenLines.length);
    expect(new Set(lines.map((line) => line.token)).size).toBe(1);
    lines.forEach((line, i) => {
      expect(line.n).toBe(i + 1);
    });
    const source = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${name}`))[0];
    expect(source.State).toMatchObject({ Running: true, Paused: false });
    expect(source.RestartCount).toBe(0);

    // Nothing left on the target: no container, no image this run copied, no checkpoint copies.
    expect(await onHost(bed, bed.host2, 'docker ps -aq')).toBe('');
    expect(await onHost(bed, bed.host2, 'docker images -q | sort')).toBe(imagesBefore);
    expect(await onHost(bed, bed.host2, 'ls -d /tmp/ctrd-checkpoint* 2>/dev/null | wc -l')).toBe('0\n');
    // No memory images on the source; the record there says what happened.
    const record = JSON.parse(
      await onHost(bed, bed.host1, `cat /var/lib/criu-migrate/${run.outputs['checkpoint-name']}/state.json`),
    );
    expect(record).toMatchObject({ role: 'source', status: 'rolled-back' });
    expect(await onHost(bed, bed.host1, `ls /var/lib/criu-migrate/${run.outputs['checkpoint-name']}`)).toBe(
      'state.json\n',
    );
  });
});
