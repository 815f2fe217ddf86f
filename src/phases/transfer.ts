import type { ContainerInspect } from '../engine/docker/inspect.js';
import {
  type ContainerdTmp,
  containerdTmpScript,
  describeRestorePath,
  parseContainerdTmp,
  parseStagedCheckpoint,
  RESTORE_MARKER_FILE,
  type RestorePath,
  stagedCheckpointScript,
} from '../engine/docker/staged-pages.js';
import { allSettledOrThrow, MigrationError } from '../errors.js';
import { type ArmedStream, type ArmedVariants, armRelay } from '../host/armed.js';
import { describeHost } from '../host/host.js';
import { NOTE_MARK, type StreamResult } from '../host/relay.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { streamVia } from '../host/stream-routes.js';
import {
  CODEC_PROBE,
  type Codec,
  chooseCodec,
  parseCodecs,
  parseSample,
  type StreamCodec,
  sampleCommandScript,
  streamCodec,
  withCodec,
} from '../policy/compression.js';
import type { Compression } from '../settings.js';
import { PRIVATE, type WorkKey, workDir } from '../state/host-records.js';
import type { CheckpointResult } from './checkpoint.js';
import type { Named, RunContext } from './context.js';
import type { StageResult } from './stage.js';

export interface MoveResult {
  checkpoint: StreamResult;
  writableLayer: StreamResult;
  restorePath: RestorePath;
  /** Which codec each stream travelled with, and why. */
  codecs: { checkpoint: StreamCodec; writableLayer: StreamCodec };
}

// GNU tar: keep overlay whiteouts (device nodes) and opaque-directory xattrs.
export const LAYER_TAR = [
  '--numeric-owner',
  '--xattrs',
  '--xattrs-include=trusted.*',
  '--xattrs-include=security.*',
];

/**
 * Records of 256 KiB instead of tar's 10 KiB: a 256 MiB dump moves in a
 * thousand writes, not 26,000, each of which wakes the next stage of the pipe.
 */
export const TAR_RECORD = ['-b', '512'];

/**
 * One pass of the writable layer (GNU tar --listed-incremental): the bulk while
 * the container runs (files changing under tar are expected there, exit 1),
 * then, frozen, only what changed since, deletions included.
 */
export function layerSendCommand(upper: string, snapshot: string, live: boolean): string {
  const tar = shellQuote([
    'tar',
    '-C',
    upper,
    `--listed-incremental=${snapshot}`,
    ...LAYER_TAR,
    ...(live ? ['--warning=no-file-changed', '--warning=no-file-removed', '--warning=no-file-shrank'] : []),
    '-cf',
    '-',
    '.',
  ]);
  return live ? `${tar}; s=$?; [ "$s" -eq 1 ] && s=0; exit "$s"` : tar;
}

/** Extracts one layer pass into a new container's upper directory, deleting what the source deleted. */
export function layerReceiveCommand(upper: string): string {
  return shellQuote(['tar', '-C', upper, '--listed-incremental=/dev/null', ...LAYER_TAR, '-xpf', '-']);
}

/** Everything the transfer needs that is decided before the freeze. */
export interface TransferPlan {
  codec: Codec;
  /** The writable layer's codec, from a sample taken before the freeze. */
  layerCodec: StreamCodec;
  receiver: CheckpointReceiver;
}

/**
 * Before the freeze: the codec for the writable layer (from a sample of it),
 * the journal entry and staging directory for the images on the target.
 */
export async function planTransfer(
  ctx: RunContext<Named & { compression: Compression }>,
  container: ContainerInspect,
  staged: StageResult,
  codec: Codec,
  containerd: ContainerdTmp,
  marker: string,
): Promise<TransferPlan> {
  const upper = sourceUpperDir(ctx, container);
  const [layerCodec, receiver] = await allSettledOrThrow([
    sampleLayer(ctx, upper, codec),
    receiveCheckpoint(ctx, containerd, staged.targetCheckpointDir, marker),
  ]);
  return { codec, layerCodec, receiver };
}

function sourceUpperDir(ctx: RunContext<unknown>, container: ContainerInspect): string {
  const upper = container.GraphDriver?.Data?.UpperDir;
  if (!upper) {
    throw new MigrationError(
      'STORAGE_DRIVER_UNSUPPORTED',
      'the source container has no overlay2 upper directory',
      {
        step: 'transfer',
        host: describeHost(ctx.source),
      },
    );
  }
  return upper;
}

/** The writable layer's codec from its first 4 MiB as tar would send them; it changes little while frozen. */
export async function sampleLayer(
  ctx: RunContext<{ compression: Compression }>,
  upper: string,
  codec: Codec,
): Promise<StreamCodec> {
  if (ctx.settings.compression !== 'auto' || codec === 'none')
    return streamCodec(ctx.settings.compression, codec, undefined);
  const result = await ctx.source.run(
    sampleCommandScript(codec, shellQuote(['tar', '-C', upper, ...LAYER_TAR, '-cf', '-', '.'])),
    { timeoutMs: 60_000 },
  );
  return streamCodec(ctx.settings.compression, codec, parseSample(result.stdout));
}

/** CRIU's images, from the dump's directory into the target's receiver. */
function imagesStream(codec: Codec, imagesDir: string, plan: TransferPlan) {
  return withCodec(
    codec,
    shellQuote(['tar', '-C', imagesDir, ...TAR_RECORD, '-cf', '-', '.']),
    plan.receiver.consume,
  );
}

/** The source's writable layer, into the target container's upper directory. */
function layerStream(
  ctx: RunContext<Named & { compression: Compression }>,
  container: ContainerInspect,
  staged: StageResult,
  plan: TransferPlan,
) {
  return withCodec(
    plan.layerCodec.codec,
    shellQuote(['tar', '-C', sourceUpperDir(ctx, container), ...LAYER_TAR, ...TAR_RECORD, '-cf', '-', '.']),
    shellQuote(['tar', '-C', staged.targetUpperDir, ...LAYER_TAR, ...TAR_RECORD, '-xpf', '-']),
  );
}

/** The images' codec, from the dump's sample; logged with the layer's. */
function pagesCodecOf(
  ctx: RunContext<Named & { compression: Compression }>,
  dumped: CheckpointResult,
  plan: TransferPlan,
): StreamCodec {
  const pagesCodec = streamCodec(ctx.settings.compression, plan.codec, dumped.pagesSample);
  ctx.log.info(
    `checkpoint stream: ${pagesCodec.codec === 'none' ? 'raw' : pagesCodec.codec} (${pagesCodec.reason}); writable layer: ${plan.layerCodec.codec === 'none' ? 'raw' : plan.layerCodec.codec} (${plan.layerCodec.reason})`,
  );
  return pagesCodec;
}

/** The frozen state's two streams, armed before the freeze (armState), fired inside it (fireState). */
export interface ArmedMove {
  images: ArmedStream;
  layer: ArmedStream;
  /** Ends both when the move never happened (a failed dump, cancel, a unit member failed). */
  disarm(): Promise<void>;
}

/**
 * Before the freeze: both streams of the frozen state set up and held, CRIU's images
 * (from the dump's images directory, known before the dump) to the target's receiver and
 * the source's writable layer into the target's upper directory. The images' codec depends
 * on a sample of the dump (compression: auto): both ways are armed and the go line picks.
 */
export async function armState(
  ctx: RunContext<Named & { compression: Compression }>,
  container: ContainerInspect,
  imagesDir: string,
  staged: StageResult,
  plan: TransferPlan,
  /** relay: through the runner even with a direct route open. */
  via: 'any' | 'relay' = 'any',
): Promise<ArmedMove> {
  const imageCodecs: Codec[] =
    ctx.settings.compression === 'auto' && plan.codec !== 'none'
      ? ['none', plan.codec]
      : [streamCodec(ctx.settings.compression, plan.codec, undefined).codec];
  const images = Object.fromEntries(
    imageCodecs.map((codec) => [codec, imagesStream(codec, imagesDir, plan)]),
  );
  const layer = { [plan.layerCodec.codec]: layerStream(ctx, container, staged, plan) };
  const arm = (variants: ArmedVariants, label: string) =>
    ctx.streams
      ? ctx.streams.arm(ctx.source, ctx.target, variants, { label, step: 'transfer', log: ctx.log }, via)
      : armRelay(ctx.source, ctx.target, variants, { label, step: 'transfer', log: ctx.log });
  const [imagesArmed, layerArmed] = await Promise.allSettled([
    arm(images, 'checkpoint'),
    arm(layer, 'writable layer'),
  ]);
  const armed = [imagesArmed, layerArmed].flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  const disarm = async (): Promise<void> => {
    await Promise.all(armed.map((stream) => stream.disarm()));
  };
  if (imagesArmed.status === 'rejected') {
    await disarm();
    throw imagesArmed.reason;
  }
  if (layerArmed.status === 'rejected') {
    await disarm();
    throw layerArmed.reason;
  }
  const streams = { images: imagesArmed.value, layer: layerArmed.value };
  ctx.log.info(
    `transfer: checkpoint and writable layer streams armed (${streams.images.route === 'direct' ? 'host to host' : 'through the runner'}); they wait for the dump`,
  );
  return { ...streams, disarm };
}

/**
 * Inside the frozen window: fires both armed streams (the images' codec from the dump's
 * sample) and waits for them. Nothing else runs on the hosts here.
 */
export async function fireState(
  ctx: RunContext<Named & { compression: Compression }>,
  armed: ArmedMove,
  dumped: CheckpointResult,
  plan: TransferPlan,
): Promise<MoveResult> {
  const pagesCodec = pagesCodecOf(ctx, dumped, plan);
  const [checkpoint, writableLayer] = await allSettledOrThrow([
    armed.images.fire(pagesCodec.codec),
    armed.layer.fire(plan.layerCodec.codec),
  ]);
  return {
    checkpoint,
    writableLayer,
    restorePath: plan.receiver.restorePath(checkpoint.notes),
    codecs: { checkpoint: pagesCodec, writableLayer: plan.layerCodec },
  };
}

/**
 * Inside the frozen window, unarmed: both streams spawned and run there. Post-copy moves use
 * it: armed before the freeze, their two small streams measured slower (lazy downtime
 * 1.15-1.25 s against 0.92-1.01 s, 256 MiB, 3 runs each), not yet understood.
 */
export async function moveState(
  ctx: RunContext<Named & { compression: Compression }>,
  container: ContainerInspect,
  dumped: CheckpointResult,
  staged: StageResult,
  plan: TransferPlan,
  /**
   * relay: a post-copy move's streams carry no memory; through the runner's open channels they
   * cost no new SSH handshake inside the frozen window, as a direct stream would.
   */
  via: 'any' | 'relay' = 'any',
): Promise<MoveResult> {
  const pagesCodec = pagesCodecOf(ctx, dumped, plan);
  const images = imagesStream(pagesCodec.codec, dumped.imagesDir, plan);
  const layer = layerStream(ctx, container, staged, plan);
  const [checkpoint, writableLayer] = await allSettledOrThrow([
    streamVia(
      ctx.streams,
      ctx.source,
      images.produce,
      ctx.target,
      images.consume,
      { label: 'checkpoint', step: 'transfer', log: ctx.log },
      via,
    ),
    streamVia(
      ctx.streams,
      ctx.source,
      layer.produce,
      ctx.target,
      layer.consume,
      { label: 'writable layer', step: 'transfer', log: ctx.log },
      via,
    ),
  ]);
  return {
    checkpoint,
    writableLayer,
    restorePath: plan.receiver.restorePath(checkpoint.notes),
    codecs: { checkpoint: pagesCodec, writableLayer: plan.layerCodec },
  };
}

export interface CheckpointReceiver {
  /**
   * The target's end of the images stream: a tar extracting them, then (same
   * command, no round trip while frozen) Docker's checkpoint directory built
   * from them and the restore path taken reported as a stream note.
   */
  consume: string;
  /** The restore path the receiving command reported. */
  restorePath(notes: readonly string[]): RestorePath;
}

/** Where the images are staged on the target, inside the run's work directory. */
export function stagingDir(key: WorkKey): string {
  return `${workDir(key)}/staged`;
}

const PATH_NOTE = 'restore-path';

/**
 * The target's side of the images stream, journalled and its directories made
 * before the freeze. With containerd's TMPDIR known, the images land in the
 * staging directory and Docker's checkpoint directory gets copies of the
 * small ones and relative links for the pages, so `docker start --checkpoint`
 * copies only a few KiB. Without it they land in the checkpoint directory
 * itself (the full copy). `marker` names the run in a file of the checkpoint
 * directory, so containerd's copies can be found before the images exist.
 */
export async function receiveCheckpoint(
  ctx: RunContext<Named>,
  containerd: ContainerdTmp,
  checkpointDir: string,
  marker?: string,
): Promise<CheckpointReceiver> {
  // Root-only on the target too: umask 077 and tar told not to restore the source's modes.
  const extractInto = (dir: string) =>
    `${PRIVATE} ${shellQuote(['tar', '-C', dir, ...TAR_RECORD, '--no-same-permissions', '-xf', '-'])}`;
  const markIt = marker
    ? ` && printf '%s\\n' ${shellQuote([marker])} >${shellQuote([`${checkpointDir}/${RESTORE_MARKER_FILE}`])}`
    : '';
  const report = (said: string) => `printf '${NOTE_MARK} ${PATH_NOTE} %s\\n' ${said} >&2`;
  const dirs = containerd.found ? [stagingDir(ctx.settings), checkpointDir] : [checkpointDir];
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: dirs }, 'target');
  await runChecked(ctx.target, `${PRIVATE} mkdir -p ${shellQuote(dirs)}`, {
    step: 'stage',
    what: 'making the directories for the checkpoint on the target',
    code: 'TRANSFER_FAILED',
  });
  if (!containerd.found) {
    const reason = containerd.reason;
    return {
      consume: `${extractInto(checkpointDir)}${markIt}`,
      restorePath: () => announce(ctx, { path: 'full-copy', reason }),
    };
  }
  const staging = stagingDir(ctx.settings);
  return {
    consume: [
      `${extractInto(staging)} || exit $?`,
      `r=$(${stagedCheckpointScript(staging, checkpointDir, containerd.dir)}) || exit 1`,
      `${report('"$r"')}${markIt}`,
    ].join('\n'),
    restorePath: (notes) => {
      const said = notes
        .filter((note) => note.startsWith(`${PATH_NOTE} `))
        .map((note) => note.slice(PATH_NOTE.length + 1))
        .pop();
      const path = (said !== undefined ? parseStagedCheckpoint(said) : undefined) ?? {
        path: 'full-copy',
        reason: `unexpected answer ${JSON.stringify((said ?? '').slice(0, 200))}`,
      };
      return announce(ctx, path);
    },
  };
}

function announce(ctx: RunContext<Named>, path: RestorePath): RestorePath {
  const said = `restore path: ${describeRestorePath(path)}`;
  if (path.path === 'staged-pages') ctx.log.info(said);
  else ctx.log.warning(`${said}; docker start --checkpoint copies every page twice before CRIU runs`);
  return path;
}

/**
 * Before the freeze: which TMPDIR the target's containerd unpacks checkpoints
 * into, so the pages can be linked from there.
 */
export async function probeContainerdTmp(ctx: RunContext<unknown>): Promise<ContainerdTmp> {
  const result = await ctx.target.run(containerdTmpScript(), { timeoutMs: 30_000 });
  const found = parseContainerdTmp(result.stdout, result.exitCode);
  if (found.found)
    ctx.log.info(
      `containerd on the target (${found.kind}, pid ${found.pid}) unpacks checkpoints into ${found.dir}: the pages will be staged and linked`,
    );
  return found;
}

/** Which compression both hosts can run, decided before the freeze. */
export async function negotiateCodec(ctx: RunContext<{ compression: Compression }>): Promise<Codec> {
  const [source, target] = await Promise.all([ctx.source.run(CODEC_PROBE), ctx.target.run(CODEC_PROBE)]);
  const codec = chooseCodec(ctx.settings.compression, parseCodecs(source.stdout), parseCodecs(target.stdout));
  ctx.log.info(
    `streams between the hosts: ${codec === 'none' ? 'uncompressed' : `compressed with ${codec}`}`,
  );
  return codec;
}
