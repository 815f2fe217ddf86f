import { MigrationError } from '../errors.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { streamVia } from '../host/stream-routes.js';
import { type Codec, withCodec } from '../policy/compression.js';
import {
  asideDir,
  type VolumePlan,
  volumeCreateArgs,
  volumeReceiveCommand,
  volumeSendCommand,
} from '../policy/volumes.js';
import type { VolumeFacts, VolumePassFacts } from '../report/metadata.js';
import { PRIVATE, type WorkKey, workDir } from '../state/host-records.js';
import type { StoredVolume } from '../state/store.js';
import type { Named, RunContext } from './context.js';

/** The volumes of one run, as prepared on the target, with what each pass moved. */
export interface MovingVolume {
  plan: VolumePlan;
  /** The target volume's mount point. */
  targetMountpoint: string;
  passes: VolumePassFacts[];
}

/** The source's tar snapshot files (--listed-incremental) of one run; beside the work directory, which the checkpoint recreates. */
export function snapshotDir(key: WorkKey): string {
  return `${workDir(key)}.volumes`;
}

function snapshotFile(key: WorkKey, volume: string): string {
  return `${snapshotDir(key)}/${volume}.snar`;
}

async function mountpointOf(ctx: RunContext<Named>, name: string): Promise<string> {
  const result = await runChecked(
    ctx.target,
    `docker volume inspect --format '{{.Mountpoint}}' ${shellQuote([name])}`,
    { step: 'volumes', what: `reading where volume ${name} lives`, code: 'VOLUME_TRANSFER_FAILED' },
  );
  const mountpoint = result.stdout.trim();
  if (!mountpoint.startsWith('/'))
    throw new MigrationError('VOLUME_TRANSFER_FAILED', `volume ${name} has no mount point on the target`, {
      step: 'volumes',
    });
  return mountpoint;
}

/**
 * Before the container is created on the target: each moved volume is created
 * there like the source's (journalled, so a rollback removes it), or an
 * existing one has its contents set aside (put back on rollback).
 */
export async function prepareTargetVolumes(
  ctx: RunContext<Named>,
  plans: readonly VolumePlan[],
): Promise<MovingVolume[]> {
  const moving: MovingVolume[] = [];
  for (const plan of plans) {
    if (plan.target.action === 'create') {
      await ctx.journal.around({ kind: 'volume-created', name: plan.name }, 'target', () =>
        runChecked(ctx.target, shellQuote(['docker', ...volumeCreateArgs(plan.source)]), {
          step: 'volumes',
          what: `creating volume ${plan.name} on the target`,
          code: 'VOLUME_TRANSFER_FAILED',
        }),
      );
      ctx.log.info(`volume ${plan.name}: created on the target`);
    } else if (plan.copyContents) {
      const mountpoint = plan.target.mountpoint;
      const aside = asideDir(mountpoint, ctx.settings.checkpointName);
      const [mp, old] = [shellQuote([mountpoint]), shellQuote([aside])];
      await ctx.journal.around(
        { kind: 'volume-replaced', name: plan.name, mountpoint, aside },
        'target',
        () =>
          runChecked(
            ctx.target,
            `mv -- ${mp} ${old} && mkdir -- ${mp} && chown --reference=${old} ${mp} && chmod --reference=${old} ${mp}`,
            {
              step: 'volumes',
              what: `setting aside the contents of volume ${plan.name} on the target`,
              code: 'VOLUME_TRANSFER_FAILED',
            },
          ),
      );
      ctx.log.info(
        `volume ${plan.name}: ${plan.target.hadContent ? 'old contents set aside until the run succeeds' : 'exists empty on the target'}`,
      );
    }
    moving.push({ plan, targetMountpoint: await mountpointOf(ctx, plan.name), passes: [] });
  }
  return moving;
}

/** Makes the source's directory of tar snapshot files, journalled (removed when the run ends). */
export async function prepareSnapshots(ctx: RunContext<Named>): Promise<void> {
  const dir = snapshotDir(ctx.settings);
  await ctx.journal.around({ kind: 'files', side: 'source', paths: [dir] }, 'source', () =>
    runChecked(ctx.source, `${PRIVATE} mkdir -p ${shellQuote([dir])}`, {
      step: 'volumes',
      what: 'creating the directory of the volume snapshots',
      code: 'VOLUME_TRANSFER_FAILED',
    }),
  );
}

/**
 * One pass of one volume from the source, streamed through the runner like
 * the checkpoint into `consume` on `to`. The bulk pass runs while the
 * container still writes; the frozen pass sends what changed since (new,
 * changed and deleted files), or everything when there was no bulk pass.
 */
async function passVolume(
  ctx: RunContext<Named>,
  name: string,
  mountpoint: string,
  to: RunContext['target'],
  consume: string,
  codec: Codec,
  pass: VolumePassFacts['pass'],
): Promise<VolumePassFacts> {
  const snapshot = snapshotFile(ctx.settings, name);
  const stages = withCodec(codec, volumeSendCommand(mountpoint, snapshot, pass === 'bulk'), consume);
  const result = await streamVia(ctx.streams, ctx.source, stages.produce, to, stages.consume, {
    label: `volume ${name} (${pass})`,
    step: 'volumes',
    log: ctx.log,
    code: 'VOLUME_TRANSFER_FAILED',
  });
  return { pass, bytes: result.bytes, sha256: result.sha256, ms: Math.round(result.ms) };
}

/** One pass over every moved volume into the target's volumes. */
export async function sendVolumes(
  ctx: RunContext<Named>,
  volumes: readonly MovingVolume[],
  codec: Codec,
  pass: VolumePassFacts['pass'],
): Promise<void> {
  for (const volume of volumes) {
    if (!volume.plan.copyContents) continue;
    const consume = volumeReceiveCommand(volume.targetMountpoint);
    volume.passes.push(
      await passVolume(
        ctx,
        volume.plan.name,
        volume.plan.source.mountpoint,
        ctx.target,
        consume,
        codec,
        pass,
      ),
    );
  }
}

/** Where a stored volume's pass lands in the checkpoint directory. */
export function storedArchive(name: string, pass: VolumePassFacts['pass']): string {
  return `volumes/${name}/${pass}.tar`;
}

/** One pass over every moved volume into files of the checkpoint being written (`dir` on the store). */
export async function storeVolumes(
  ctx: RunContext<Named>,
  volumes: readonly StoredVolume[],
  dir: string,
  codec: Codec,
  pass: VolumePassFacts['pass'],
): Promise<void> {
  for (const volume of volumes) {
    if (!volume.contentsMoved) continue;
    const file = `${dir}/${storedArchive(volume.name, pass)}`;
    const consume = `${PRIVATE} mkdir -p ${shellQuote([`${dir}/volumes/${volume.name}`])} && cat >${shellQuote([file])}`;
    volume.passes.push(
      await passVolume(ctx, volume.name, volume.info.mountpoint, ctx.target, consume, codec, pass),
    );
    volume.archives.push(storedArchive(volume.name, pass));
  }
}

/** What the metadata says of the volumes. */
export function volumeFacts(volumes: readonly MovingVolume[]): VolumeFacts[] {
  return volumes.map((volume) => {
    const last = volume.passes.at(-1);
    return {
      name: volume.plan.name,
      ...(volume.plan.sizeBytes === undefined ? {} : { sizeBytes: volume.plan.sizeBytes }),
      target: volume.plan.target.action === 'create' ? 'created' : 'replaced',
      contentsMoved: volume.plan.copyContents && volume.passes.some((p) => p.pass === 'frozen'),
      passes: volume.passes,
      ...(last ? { sha256: last.sha256 } : {}),
    };
  });
}

/**
 * Restore mode: fills the target's volumes (prepared by prepareTargetVolumes)
 * from a stored checkpoint, each pass's archive in the order it was taken.
 */
export async function restoreStoredVolumes(
  ctx: RunContext<Named>,
  moving: readonly MovingVolume[],
  stored: readonly StoredVolume[],
  checkpointDir: string,
  codec: Codec,
): Promise<void> {
  for (const volume of moving) {
    const kept = stored.find((entry) => entry.name === volume.plan.name);
    // Not into a target volume with driver options (used as it is): its _data is not what the container sees.
    if (!kept?.contentsMoved || !volume.plan.copyContents) continue;
    for (const archive of kept.archives) {
      const stages = withCodec(
        codec,
        shellQuote(['cat', `${checkpointDir}/${archive}`]),
        volumeReceiveCommand(volume.targetMountpoint),
      );
      const result = await streamVia(ctx.streams, ctx.source, stages.produce, ctx.target, stages.consume, {
        label: `volume ${kept.name} (${archive.replace(/^.*\//, '').replace(/\.tar$/, '')})`,
        step: 'volumes',
        log: ctx.log,
        code: 'VOLUME_TRANSFER_FAILED',
      });
      volume.passes.push({
        pass: archive.endsWith('/bulk.tar') ? 'bulk' : 'frozen',
        bytes: result.bytes,
        sha256: result.sha256,
        ms: Math.round(result.ms),
      });
    }
  }
}
