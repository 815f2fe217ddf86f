import { parseDumpStats } from '../criu-stats.js';
import type { ContainerInspect } from '../docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { runChecked, shellQuote, tailLines } from '../host/shell.js';
import { criuWorkDir, imagesDir, stateDir } from '../migration-state.js';
import type { CriuStats } from '../report/metadata.js';
import type { MigrationContext } from './context.js';

/** Where Docker's runc keeps container state, newest layouts first. */
export const RUNC_ROOTS = ['/run/docker/runtime-runc/moby', '/var/run/docker/runtime-runc/moby'] as const;

export interface CheckpointResult {
  /** Clock reading when the source was paused: the service is down from here. */
  frozenAt: number;
  imagesDir: string;
  imagesBytes: number;
  dumpMs: number;
  /** CRIU's own statistics from its stats-dump image, when it wrote one. */
  stats?: CriuStats;
}

export interface PreparedCheckpoint {
  runcRoot: string;
  imagesDir: string;
  workDir: string;
}

/** Everything that can be done before the freeze: find runc's state, make empty directories. */
export async function prepareCheckpoint(
  ctx: MigrationContext,
  container: ContainerInspect,
): Promise<PreparedCheckpoint> {
  const name = ctx.settings.checkpointName;
  const probe = RUNC_ROOTS.map(
    (root) => `[ -f ${shellQuote([`${root}/${container.Id}/state.json`])} ] && echo ${shellQuote([root])}`,
  ).join(' || ');
  const found = await ctx.source.run(`${probe} || true`);
  const runcRoot = found.stdout.trim().split('\n')[0];
  if (!runcRoot) {
    throw new MigrationError(
      'RUNTIME_UNSUPPORTED',
      `runc has no state for container ${container.Id.slice(0, 12)}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: `looked in ${RUNC_ROOTS.join(', ')}`,
        remedy:
          'run the container with the runc runtime under a Docker daemon that manages it with containerd (the default)',
      },
    );
  }
  const dirs = { imagesDir: imagesDir(name), workDir: criuWorkDir(name) };
  await runChecked(
    ctx.source,
    `rm -rf ${shellQuote([dirs.imagesDir, dirs.workDir])} && mkdir -p ${shellQuote([dirs.imagesDir, dirs.workDir])}`,
    { step: 'checkpoint', what: `preparing ${stateDir(name)}` },
  );
  return { runcRoot, ...dirs };
}

/**
 * Freezes the source and dumps it while leaving it frozen: `docker pause`,
 * then runc's checkpoint with --leave-running on the paused container. On
 * any failure later on, `docker unpause` resumes it exactly where it was.
 * runc directly takes well under a second here, `docker checkpoint create`
 * several (it copies through containerd's content store).
 */
export async function freezeAndDump(
  ctx: MigrationContext,
  container: ContainerInspect,
  prepared: PreparedCheckpoint,
  onFrozen: () => Promise<void>,
): Promise<CheckpointResult> {
  const frozenAt = ctx.clock();
  await ctx.sourceDocker.pause(container.Id, 'checkpoint');
  await onFrozen();
  const dumpStart = ctx.clock();
  const dump = await ctx.source.run(
    shellQuote([
      'runc',
      '--root',
      prepared.runcRoot,
      'checkpoint',
      '--leave-running',
      '--image-path',
      prepared.imagesDir,
      '--work-path',
      prepared.workDir,
      container.Id,
    ]),
  );
  const dumpMs = ctx.clock() - dumpStart;
  if (dump.exitCode !== 0) {
    throw new MigrationError(
      'CHECKPOINT_FAILED',
      `CRIU could not dump container ${container.Name.replace(/^\//, '')}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: [tailLines(dump.stderr, 5), await criuLogErrors(ctx.source, `${prepared.workDir}/dump.log`)]
          .filter(Boolean)
          .join('\n'),
        remedy: 'read the CRIU lines above; `criu check` on the source shows missing kernel features',
      },
    );
  }
  const size = await runChecked(ctx.source, `du -sb ${shellQuote([prepared.imagesDir])} | cut -f1`, {
    step: 'checkpoint',
    what: 'measuring the checkpoint',
  });
  const statsImage = await ctx.source.run(`base64 <${shellQuote([`${prepared.workDir}/stats-dump`])}`);
  const stats =
    statsImage.exitCode === 0 ? parseDumpStats(Buffer.from(statsImage.stdout, 'base64')) : undefined;
  return { frozenAt, imagesDir: prepared.imagesDir, imagesBytes: Number(size.stdout.trim()), dumpMs, stats };
}

/** The error lines of a CRIU log (or its tail when none says Error), for failure messages. */
export async function criuLogErrors(host: Host, logPath: string): Promise<string> {
  const result = await host.run(
    `f=${shellQuote([logPath])}; [ -f "$f" ] || exit 0; echo "CRIU log $f:"; (grep -E 'Error|Warn|fail' "$f" || tail -n 20 "$f") | tail -n 15`,
  );
  return result.stdout.trim();
}
