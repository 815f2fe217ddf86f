import { parseDumpStats } from '../criu/stats.js';
import { DOCKER_LAYOUT } from '../engine/docker/docker-cli.js';
import type { ContainerInspect } from '../engine/docker/inspect.js';
import { pauseRetrying } from '../engine/docker/pause.js';
import { mapped } from '../engine/engine.js';
import { MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { runChecked, shellQuote, tailLines } from '../host/shell.js';
import { type Codec, type CompressionSample, parseSample, sampleFilesScript } from '../policy/compression.js';
import type { CriuStats } from '../report/metadata.js';
import { PRIVATE, workDir } from '../state/host-records.js';
import { connectionsBeforeDump, recheckFrozen } from './connections.js';
import type { Named, RunContext } from './context.js';

/** A dump that has not finished in this long is hung (CRIU stuck in a parasite, a frozen cgroup). */
const DUMP_TIMEOUT_MS = 10 * 60_000;

export interface CheckpointResult {
  /** Clock reading when the source was paused: the service is down from here. */
  frozenAt: number;
  /** Milliseconds from the pause to the end of afterDump (checkpoint mode: until the container runs again). */
  frozenFor: number;
  imagesDir: string;
  workDir: string;
  dumpMs: number;
  /** sha256 of CRIU's inventory image: tells containerd's copies of this checkpoint from others. */
  inventorySha256: string;
  /** How well a sample of the memory pages compressed, when a codec was offered. */
  pagesSample?: CompressionSample;
  /** The frozen window's first steps as the dump timed them (pause, dump), when it did. */
  stepsMs?: Record<string, number>;
}

/** What is measured of a dump once nothing waits for it: size and CRIU's statistics. */
export interface CheckpointMeasure {
  imagesBytes: number;
  stats?: CriuStats;
}

export interface PreparedCheckpoint {
  runcRoot: string;
  imagesDir: string;
  workDir: string;
  /** A CRIU configuration file for the dump (runc passes CRIU_CONFIG_FILE on to CRIU). */
  criuConfig?: string;
  /** Connections inside the container are dumped established (runc checkpoint --tcp-established). */
  tcpEstablished: boolean;
  /** memory: overlap: the dump sends its pages to this page server (host:port) instead of writing them. */
  pageServer?: string;
}

/**
 * The CRIU configuration that leaves the container's network namespace out of the dump:
 * restored into a network holder's namespace, it must be marked external when dumped.
 */
export function externalNetnsConfig(inode: string): string {
  return `external net[${inode}]:extRootNetNS\n`;
}

/** Everything that can be done before the freeze: find runc's state, make empty directories. */
export async function prepareCheckpoint(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  options: {
    /** Mark the container's own network namespace external (it is restored into a holder's). */
    externalNetns?: boolean;
    /** What the gate saw of its connections; without a gate (checkpoint mode) they are read here. */
    tcpEstablished?: boolean;
  } = {},
): Promise<PreparedCheckpoint> {
  const probe = DOCKER_LAYOUT.runcRoots
    .map(
      (root) => `[ -f ${shellQuote([`${root}/${container.Id}/state.json`])} ] && echo ${shellQuote([root])}`,
    )
    .join(' || ');
  const found = await ctx.source.run(`${probe} || true`, { timeoutMs: 30_000 });
  const runcRoot = found.stdout.trim().split('\n')[0];
  if (!runcRoot) {
    throw new MigrationError(
      'RUNTIME_UNSUPPORTED',
      `runc has no state for container ${container.Id.slice(0, 12)}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: `looked in ${DOCKER_LAYOUT.runcRoots.join(', ')}`,
        remedy:
          'run the container with the runc runtime under a Docker daemon that manages it with containerd (the default)',
      },
    );
  }
  // Without a gate (checkpoint mode) the connections are judged here, before anything is touched.
  const tcpEstablished = options.tcpEstablished ?? (await connectionsBeforeDump(ctx, container));
  const root = workDir(ctx.settings);
  const dirs = { imagesDir: `${root}/images`, workDir: `${root}/criu` };
  // Memory images hold every secret the process has: root-only from the first byte.
  await ctx.journal.intend({ kind: 'files', side: 'source', paths: [root] }, 'source');
  await runChecked(
    ctx.source,
    `${PRIVATE} rm -rf ${shellQuote([root])} && mkdir -p ${shellQuote([dirs.imagesDir, dirs.workDir])} && chmod 700 ${shellQuote([root])}`,
    { step: 'checkpoint', what: `preparing ${root}` },
  );
  if (!options.externalNetns) return { runcRoot, ...dirs, tcpEstablished };
  const pid = container.State.Pid;
  const inode = pid
    ? (await ctx.source.run(`stat -L -c %i /proc/${pid}/ns/net`, { timeoutMs: 30_000 })).stdout.trim()
    : '';
  if (!/^\d+$/.test(inode)) {
    throw new MigrationError(
      'CHECKPOINT_FAILED',
      `could not read the network namespace of container ${container.Id.slice(0, 12)}`,
      {
        step: 'checkpoint',
        host: describeHost(ctx.source),
        detail: `stat -L -c %i /proc/${pid ?? '?'}/ns/net gave "${inode}"`,
        remedy: 'make sure the container is running, then run again',
      },
    );
  }
  const criuConfig = `${root}/criu-dump.conf`;
  await runChecked(
    ctx.source,
    `${PRIVATE} printf %s ${shellQuote([externalNetnsConfig(inode)])} >${shellQuote([criuConfig])}`,
    { step: 'checkpoint', what: 'writing the CRIU configuration for the dump' },
  );
  return { runcRoot, ...dirs, criuConfig, tcpEstablished };
}

/**
 * Freezes the source and dumps it while leaving it frozen: `docker pause`,
 * then runc's checkpoint with --leave-running on the paused container. On
 * any failure later on, `docker unpause` resumes it exactly where it was.
 * runc directly takes well under a second here, `docker checkpoint create`
 * several (it copies through containerd's content store).
 */
export async function freezeAndDump(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  prepared: PreparedCheckpoint,
  /** Runs as soon as runc has written the images (checkpoint mode resumes the container here). */
  afterDump: () => Promise<void> = async () => {},
  /** The codec the pages may travel with: a sample of them is compressed in the same command. */
  sampleCodec: Codec = 'none',
  /** Runs once the container is paused, before the dump (a compose unit waits here until every member is paused). */
  afterPause: () => Promise<void> = async () => {},
): Promise<CheckpointResult> {
  // The source's own clock: a later roll-forward asks its Docker whether anyone resumed the container since.
  const clock = await ctx.source.run('date +%s.%N', { timeoutMs: 10_000 }).catch(() => undefined);
  const since = clock?.exitCode === 0 ? clock.stdout.trim() : '';
  const paused = await ctx.journal.intend(
    {
      kind: 'source-paused',
      containerId: container.Id,
      ...(/^\d+\.\d+$/.test(since) ? { since } : {}),
    },
    'source',
  );
  const frozenAt = ctx.clock();
  await mapped(
    pauseRetrying(ctx.sourceDocker, container.Id, 'checkpoint', (note) => ctx.log.warning(note)),
    'CHECKPOINT_FAILED',
  );
  // Not written again while frozen: an intended pause is undone the same way as a done one.
  paused.state = 'done';
  if (prepared.tcpEstablished) await recheckFrozen(ctx, container);
  await afterPause();
  const dumpStart = ctx.clock();
  // One command while frozen: the dump, then (only when it succeeded) what the
  // transfer and the restore need from it; nothing else runs until after the restore.
  // runc hands its environment to CRIU: that is how the dump gets the configuration.
  const criuEnv = prepared.criuConfig ? `CRIU_CONFIG_FILE=${shellQuote([prepared.criuConfig])} ` : '';
  const images = shellQuote([prepared.imagesDir]);
  const dump = await ctx.source.run(
    [
      `${PRIVATE} ${criuEnv}${shellQuote([
        'runc',
        '--root',
        prepared.runcRoot,
        'checkpoint',
        '--leave-running',
        ...(prepared.tcpEstablished ? ['--tcp-established'] : []),
        ...(prepared.pageServer ? ['--page-server', prepared.pageServer] : []),
        '--image-path',
        prepared.imagesDir,
        '--work-path',
        prepared.workDir,
        container.Id,
      ])} || exit $?`,
      `cd ${images} || exit 1`,
      `printf '${INVENTORY_MARK} %s\\n' "$(sha256sum <inventory.img | cut -d' ' -f1)"`,
      sampleFilesScript(sampleCodec, "'pages-'*.img"),
    ].join('\n'),
    { timeoutMs: DUMP_TIMEOUT_MS },
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
  await afterDump();
  const frozenFor = ctx.clock() - frozenAt;
  const inventorySha256 = new RegExp(`^${INVENTORY_MARK} ([0-9a-f]{64})$`, 'm').exec(dump.stdout)?.[1];
  if (!inventorySha256) {
    throw new MigrationError('CHECKPOINT_FAILED', 'the dump wrote no readable inventory image', {
      step: 'checkpoint',
      host: describeHost(ctx.source),
      detail: tailLines(`${dump.stdout}\n${dump.stderr}`, 5),
      remedy: 'read the CRIU log in the work directory on the source; `criu check` shows missing features',
    });
  }
  return {
    frozenAt,
    frozenFor,
    imagesDir: prepared.imagesDir,
    workDir: prepared.workDir,
    dumpMs,
    inventorySha256,
    pagesSample: parseSample(dump.stdout),
  };
}

const INVENTORY_MARK = 'criu-migrate-inventory';

/** Size and CRIU's statistics of a dump, in one round trip; run after the frozen window. */
export async function measureCheckpoint(
  ctx: RunContext<unknown>,
  dumped: Pick<CheckpointResult, 'imagesDir' | 'workDir'>,
): Promise<CheckpointMeasure> {
  const measured = await runChecked(
    ctx.source,
    [
      `cd ${shellQuote([dumped.imagesDir])} || exit 1`,
      'du -sb . | cut -f1',
      `base64 -w0 <${shellQuote([`${dumped.workDir}/stats-dump`])} 2>/dev/null; true`,
    ].join('\n'),
    { step: 'checkpoint', what: 'measuring the checkpoint' },
  );
  const [bytes = '', statsText = ''] = measured.stdout.split('\n');
  const stats = statsText.trim() !== '' ? parseDumpStats(Buffer.from(statsText.trim(), 'base64')) : undefined;
  return { imagesBytes: Number(bytes.trim()), stats };
}

/** The error lines of a CRIU log (or its tail when none says Error), for failure messages. */
export async function criuLogErrors(host: Host, logPath: string): Promise<string> {
  const result = await host.run(
    `f=${shellQuote([logPath])}; [ -f "$f" ] || exit 0; echo "CRIU log $f:"; (grep -E 'Error|Warn|fail' "$f" || tail -n 20 "$f") | tail -n 15`,
  );
  return result.stdout.trim();
}
