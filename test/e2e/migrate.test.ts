import { existsSync, readFileSync, statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectNothingLeft, expectResumedAfter, lastRecord } from './invariants.js';
import { runAction } from './run-action.js';
import {
  checkCounterMemory,
  containerLogs,
  largestGapMs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

let bed: Testbed;

function baseInputs(source: string, target: string, container: string): Record<string, string> {
  return {
    mode: 'migrate',
    container,
    source,
    target,
    ...sshInputs(bed),
    'verify-log-pattern': '^\\d+ \\d{13} ',
    'verify-timeout': '20',
    timeout: '10',
  };
}

async function inspect(
  host: string,
  name: string,
): Promise<Record<string, never> & { [key: string]: unknown }> {
  return JSON.parse(await onHost(bed, host, `docker inspect ${name}`))[0];
}

beforeAll(() => {
  bed = loadTestbed();
});

describe('migrate mode on the two-host test bed', () => {
  const name = 'e2e-counter';

  it('moves a running counter from host 1 to host 2 and back, state and configuration intact', async () => {
    // Host 2 starts empty, so the image has to travel.
    await onHostResult(bed, bed.host2, `docker ps -aq | xargs -r docker rm -f; docker rmi ${bed.image}`);
    await startCounter(bed, bed.host1, name, {
      mb: 64,
      // One repeated byte: the compression assertions below need memory that compresses.
      pattern: 'zeros',
      extraArgs:
        '--label team=batch --label tier=gold -e JOB=nightly --restart unless-stopped --workdir /tmp',
    });
    const before = await inspect(bed.host1, name);

    const run = await runAction(baseInputs(bed.host1, bed.host2, name));
    expect(run.stderr).toBe('');
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');

    // The counter continued on host 2: same token, next number, memory intact.
    const sourceLines = parseCounter(await containerLogs(bed, bed.host1, name));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const targetLog = await containerLogs(bed, bed.host2, name);
    const targetLines = parseCounter(targetLog);
    const last = sourceLines.at(-1)!;
    expectResumedAfter(last, targetLines);
    expect(targetLines.length).toBeGreaterThan(3);
    const downtime = largestGapMs([...sourceLines, ...targetLines]);
    const phases = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8')).timings;
    console.log(`workload-measured downtime host1->host2: ${downtime} ms; action: ${JSON.stringify(phases)}`);
    // The frozen window by step adds up to the reported downtime (rounding aside), with the commands sent inside it.
    const { commands, ...steps } = phases.frozenWindowMs as Record<string, number>;
    expect(Object.keys(steps)).toEqual(['checkpoint', 'transfer', 'restore']);
    const summed = Object.values(steps).reduce((sum, ms) => sum + ms, 0);
    expect(Math.abs(summed - phases.downtimeMs)).toBeLessThanOrEqual(3);
    expect(commands).toBeGreaterThan(0);
    expect(run.stdout).toMatch(
      /^frozen window: checkpoint \d+ ms, transfer \d+ ms, restore \d+ ms; \d+ commands on the hosts$/m,
    );

    // The source is kept, stopped, and can no longer restart by itself.
    const source = await inspect(bed.host1, name);
    expect(source.State).toMatchObject({ Running: false, Paused: false });
    expect(source.HostConfig).toMatchObject({ RestartPolicy: { Name: 'no' } });

    // The target carries the original configuration, not an import's.
    const target = await inspect(bed.host2, name);
    const pick = (c: Record<string, unknown>) => {
      const config = c.Config as Record<string, unknown>;
      const host = c.HostConfig as Record<string, unknown>;
      return {
        Cmd: config.Cmd,
        Env: config.Env,
        Labels: config.Labels,
        WorkingDir: config.WorkingDir,
        Image: config.Image,
        Restart: host.RestartPolicy,
      };
    };
    expect(pick(target)).toEqual(pick(before));
    expect(target.Id).toBe(run.outputs['target-container-id']);
    expect(target.State).toMatchObject({ Running: true, Restarting: false });
    expect(target.RestartCount).toBe(0);

    // Outputs, metadata and summary.
    expect(Number(run.outputs['downtime-ms'])).toBeGreaterThan(0);
    expect(Number(run.outputs['duration-ms'])).toBeGreaterThanOrEqual(Number(run.outputs['downtime-ms']));
    expect(Number(run.outputs['checkpoint-bytes'])).toBeGreaterThan(64 * 1024 * 1024);
    // Both hosts have zstd, so compression: auto sends the (very repetitive) memory compressed.
    expect(run.stdout).toContain('streams between the hosts: compressed with zstd');
    expect(Number(run.outputs['transferred-bytes'])).toBeGreaterThan(0);
    expect(Number(run.outputs['transferred-bytes'])).toBeLessThan(
      Number(run.outputs['checkpoint-bytes']) / 10,
    );
    const metadataPath = run.outputs['metadata-path']!;
    expect(existsSync(metadataPath)).toBe(true);
    expect(statSync(metadataPath).size).toBeLessThan(64 * 1024);
    const metadata = JSON.parse(readFileSync(metadataPath, 'utf8'));
    expect(metadata.run.status).toBe('succeeded');
    expect(metadata.checkpoint.streams.image.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(metadata.hosts.target.criu).toMatch(/^4\./);
    // CRIU's own statistics: at least the 64 MiB value's pages were written.
    expect(metadata.criu.pagesWritten).toBeGreaterThan(16_384);
    expect(metadata.criu.frozenTimeUs).toBeGreaterThan(0);
    expect(run.summary).toContain(name);
    expect(run.summary).toMatch(/succeeded/);
    // The pages were staged and linked: containerd copied only the small images before CRIU ran.
    expect(run.stdout).toContain('restore path: staged pages');
    expect(metadata.checkpoint.restorePath).toBe('staged-pages');
    expect(metadata.checkpoint.restorePathReason).toBeUndefined();
    expect(run.summary).toMatch(/Restore path.*staged pages/);

    // Nothing left behind; the journal went into the history on both hosts.
    await expectNothingLeft(bed, name);
    for (const host of [bed.host1, bed.host2]) {
      expect(await lastRecord(bed, host, name)).toMatchObject({
        status: 'done',
        checkpointName: run.outputs['checkpoint-name'],
      });
    }

    // A restored container migrates again: back to host 1 (name there must be free).
    await onHost(bed, bed.host1, `docker rm ${name}`);
    const back = await runAction(baseInputs(bed.host2, bed.host1, name));
    expect(back.exitCode, back.stdout).toBe(0);
    expect(back.outputs.status).toBe('succeeded');
    expect(back.stdout).toContain('target already has image');
    expect(back.stdout).toContain('restore path: staged pages');
    await expectNothingLeft(bed, name);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const hostTwoLines = parseCounter(await containerLogs(bed, bed.host2, name));
    const backLines = parseCounter(await containerLogs(bed, bed.host1, name));
    expectResumedAfter(hostTwoLines.at(-1)!, backLines);
    // The 64 MiB value held in memory came along intact.
    await checkCounterMemory(bed, bed.host1, name, 67108864);
    await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  });
});
