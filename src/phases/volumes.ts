import { MigrationError } from '../errors.js';
import { streamBetween } from '../host/relay.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { type Codec, withCodec } from '../policy/compression.js';
import {
  asideDir,
  type VolumePlan,
  volumeCreateArgs,
  volumeReceiveCommand,
  volumeSendCommand,
} from '../policy/volumes.js';
import type { VolumeFacts, VolumePassFacts } from '../report/metadata.js';
import { PRIVATE, workDir } from '../state/host-records.js';
import type { Named, RunContext } from './context.js';

/** The volumes of one run, as prepared on the target, with what each pass moved. */
export interface MovingVolume {
  plan: VolumePlan;
  /** The target volume's mount point. */
  targetMountpoint: string;
  passes: VolumePassFacts[];
}

/** The source's tar snapshot files (--listed-incremental) of one run; beside the work directory, which the checkpoint recreates. */
export function snapshotDir(checkpointName: string): string {
  return `${workDir(checkpointName)}.volumes`;
}

function snapshotFile(checkpointName: string, volume: string): string {
  return `${snapshotDir(checkpointName)}/${volume}.snar`;
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
  if (moving.some((volume) => volume.plan.copyContents)) {
    const dir = snapshotDir(ctx.settings.checkpointName);
    await ctx.journal.around({ kind: 'files', side: 'source', paths: [dir] }, 'source', () =>
      runChecked(ctx.source, `${PRIVATE} mkdir -p ${shellQuote([dir])}`, {
        step: 'volumes',
        what: 'creating the directory of the volume snapshots',
        code: 'VOLUME_TRANSFER_FAILED',
      }),
    );
  }
  return moving;
}

/**
 * One pass over every moved volume, streamed through the runner like the
 * checkpoint. The bulk pass runs while the container still writes; the frozen
 * pass sends what changed since (new, changed and deleted files), or
 * everything when there was no bulk pass.
 */
export async function sendVolumes(
  ctx: RunContext<Named>,
  volumes: readonly MovingVolume[],
  codec: Codec,
  pass: VolumePassFacts['pass'],
): Promise<void> {
  for (const volume of volumes) {
    if (!volume.plan.copyContents) continue;
    const snapshot = snapshotFile(ctx.settings.checkpointName, volume.plan.name);
    const stages = withCodec(
      codec,
      volumeSendCommand(volume.plan.source.mountpoint, snapshot, pass === 'bulk'),
      volumeReceiveCommand(volume.targetMountpoint),
    );
    const result = await streamBetween(ctx.source, stages.produce, ctx.target, stages.consume, {
      label: `volume ${volume.plan.name} (${pass})`,
      step: 'volumes',
      log: ctx.log,
      code: 'VOLUME_TRANSFER_FAILED',
    });
    volume.passes.push({ pass, bytes: result.bytes, sha256: result.sha256, ms: Math.round(result.ms) });
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
