import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectNothingLeft } from './invariants.js';
import { memoryMoveInputs, memorySum as memorySumOf, startMemoryWorkload, until } from './memory-workload.js';
import { runAction, runPostStep, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, type Testbed } from './testbed.js';

// Post-copy (memory: lazy) on the default bed. CRIU's page server asks for 4 MiB pipes; this
// machine allows 1 MiB and its hosts lack CAP_SYS_RESOURCE, so the gate refuses until
// fs.pipe-max-size is raised (one kernel for every bed host: raised here, put back after).
let bed: Testbed;
let pipeMaxBefore = '';
const name = 'e2e-lazy';
const PIPE_BYTES = 4 * 1024 * 1024;

/** Starts the workload on host 1 and returns the md5 it computed of its memory. */
const startWorkload = (mb: number): Promise<string> => startMemoryWorkload(bed, name, mb);
/** Asks the workload on a host for the md5 of its memory now. */
const memorySum = (host: string): Promise<string> => memorySumOf(bed, host, name);

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return memoryMoveInputs(bed, name, { memory: 'lazy', ...extra });
}

async function setPipeMax(bytes: string): Promise<void> {
  await onHost(bed, bed.host1, `echo ${bytes} >/proc/sys/fs/pipe-max-size`);
}

beforeAll(async () => {
  bed = loadTestbed();
  pipeMaxBefore = (await onHost(bed, bed.host1, 'cat /proc/sys/fs/pipe-max-size')).trim();
});

afterAll(async () => {
  if (pipeMaxBefore !== '') await setPipeMax(pipeMaxBefore);
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
});

describe('memory: lazy (post-copy)', () => {
  it('is refused before anything is touched when the pipe size CRIU needs is not allowed', async () => {
    await startWorkload(8);
    await setPipeMax(String(1024 * 1024));
    const run = await runAction(inputs());
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('LAZY_PAGES_UNSUPPORTED');
    expect(run.stdout).toContain('lazy pages: pipe size');
    expect(run.stdout).toContain('fs.pipe-max-size');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });

  it('preflight mode with memory: lazy runs the same checks: refused at 1 MiB pipes, passed at 4 MiB', async () => {
    await startWorkload(8);
    const preflight = (): Promise<Awaited<ReturnType<typeof runAction>>> =>
      runAction(inputs({ mode: 'preflight', 'verify-log-pattern': '', 'verify-timeout': '' }));
    await setPipeMax(String(1024 * 1024));
    const refused = await preflight();
    expect(refused.exitCode).not.toBe(0);
    expect(refused.outputs.status).toBe('refused');
    expect(refused.outputs['error-code']).toBe('LAZY_PAGES_UNSUPPORTED');
    const report = JSON.parse(readFileSync(refused.outputs['report-path']!, 'utf8'));
    const lazy = (report.checks as { host: string; name: string; status: string }[]).filter((check) =>
      check.name.startsWith('lazy pages:'),
    );
    // Four checks per host; the bed's hosts share one kernel, so both hosts' pipe size fails.
    expect(lazy).toHaveLength(8);
    expect(
      lazy.filter((check) => check.status === 'fail').map((check) => `${check.host} ${check.name}`),
    ).toEqual(['source lazy pages: pipe size', 'target lazy pages: pipe size']);
    expect(report.blockingCodes).toEqual(['LAZY_PAGES_UNSUPPORTED']);
    await setPipeMax(String(PIPE_BYTES));
    const passed = await preflight();
    expect(passed.exitCode, passed.stdout).toBe(0);
    expect(passed.outputs.status).toBe('succeeded');
    expect(passed.stdout).toContain('lazy pages: pipe size');
    // Nothing was touched either time.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });

  it('moves the container with its memory intact, the commit after the last page; a later checkpoint works', async () => {
    await setPipeMax(String(PIPE_BYTES));
    const before = await startWorkload(64);
    const run = await runAction(inputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain('lazy pages: every page arrived');
    const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    const { downtimeMs, lastPageMs, lazyPageBytes } = metadata.timings;
    console.log(`lazy 64 MiB: downtime ${downtimeMs} ms, last page ${lastPageMs} ms, ${lazyPageBytes} bytes`);
    expect(lastPageMs).toBeGreaterThanOrEqual(downtimeMs);
    // The frozen window by step: the pause, the dump up to the second freeze, the small images, the daemon, the restore.
    const { commands, ...steps } = metadata.timings.frozenWindowMs as Record<string, number>;
    expect(Object.keys(steps)).toEqual(['pause', 'dump', 'checkpoint', 'transfer', 'lazy-daemon', 'restore']);
    expect(Math.abs(Object.values(steps).reduce((sum, ms) => sum + ms, 0) - downtimeMs)).toBeLessThanOrEqual(
      6,
    );
    // docker pause, four stream ends, docker start: the CRIU ends were spawned before the freeze.
    expect(commands).toBe(6);
    // The memory crossed the runner after the restore, not in the checkpoint stream.
    expect(lazyPageBytes).toBeGreaterThan(64 * 1024 * 1024);
    expect(metadata.checkpoint.streams.checkpoint.bytes).toBeLessThan(16 * 1024 * 1024);

    // The same process, its memory re-read by itself on the target.
    expect(await memorySum(bed.host2)).toBe(before);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false });
    // The annotation's file no longer says lazy-pages (a later dump would wait for a daemon).
    const config = (
      await onHost(
        bed,
        bed.host2,
        `docker inspect -f '{{index .HostConfig.Annotations "org.criu.config"}}' ${name}`,
      )
    ).trim();
    expect(config).toMatch(/^\/var\/lib\/criu-migrate\//);
    expect(await onHost(bed, bed.host2, `cat ${config}`)).not.toContain('lazy-pages');
    await expectNothingLeft(bed, name);

    const checkpoint = await runAction({
      mode: 'checkpoint',
      container: name,
      source: bed.host2,
      'store-host': bed.host3,
      ...sshInputs(bed),
      timeout: '10',
    });
    expect(checkpoint.exitCode, checkpoint.stdout).toBe(0);
    expect(checkpoint.outputs.status).toBe('succeeded');
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
  });

  it("the source's page server killed mid-stream: target removed, source resumed intact, rolled back", async () => {
    await setPipeMax(String(PIPE_BYTES));
    const before = await startWorkload(256);
    const id = (await onHost(bed, bed.host1, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    const running = startAction(inputs());
    await until('the restore on the target', async () =>
      running.output().includes('restore: running on the target') ? true : undefined,
    );
    // CRIU under runc checkpoint serves the pages; kill it (not runc) outright.
    const killed = await onHostResult(
      bed,
      bed.host1,
      `p=$(pgrep -f '^runc --root .* checkpoint --leave-running --lazy-pages .*${id}') && pkill -9 -P "$p" -x criu`,
    );
    expect(killed.code, 'the page server was still serving').toBe(0);
    const killedAt = performance.now();
    const run = await running.done;
    const settledMs = performance.now() - killedAt;
    console.log(`page stream cut: the run ended ${Math.round(settledMs)} ms after the kill`);
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('LAZY_PAGES_BROKEN');
    expect(run.stdout).toContain('is lost');
    // Bounded: well inside the run's own stall limit (60 s), the process exits are what ended it.
    expect(settledMs).toBeLessThan(60_000);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect(await memorySum(bed.host1)).toBe(before);
    await expectNothingLeft(bed, name);
  });

  it('cancelled during the page transfer: rolled back, both CRIU ends gone, the post step finds nothing left', async () => {
    await setPipeMax(String(PIPE_BYTES));
    const before = await startWorkload(256);
    const checkpointName = `e2e-lazy-cancel-${Date.now()}`;
    const cancelInputs = inputs({ 'checkpoint-name': checkpointName });
    const running = startAction(cancelInputs);
    await until('the restore on the target', async () =>
      running.output().includes('restore: running on the target') ? true : undefined,
    );
    expect(running.output()).not.toContain('every page arrived');
    const main = await running.cancel();
    expect(main.exitCode).not.toBe(0);
    expect(main.outputs.status).toBe('rolled-back');
    expect(main.outputs['error-code']).toBe('CANCELLED');
    expect(main.stdout).toContain('what it did there since it started is lost');
    expect(main.stdout).not.toContain('every page arrived');
    const post = await runPostStep(cancelInputs, main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    // Neither the page server nor the lazy-pages daemon of this run outlived it.
    for (const host of [bed.host1, bed.host2]) {
      const left = await onHostResult(bed, host, `pgrep -af -- ${checkpointName} | grep -v pgrep`);
      expect(left.stdout, `left on ${host}`).toBe('');
    }
    expect(await memorySum(bed.host1)).toBe(before);
    await expectNothingLeft(bed, name);
  });
});
