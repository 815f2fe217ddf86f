/** A migration way on the counter workload: start it on host 1, move it, read what the workload saw. */
import { parseCounter } from '../../../test/e2e/testbed.js';
import type { MigrationRun } from '../report.js';
import { analyseDowntime, memoryVerdict } from '../stats.js';
import { action, actionLazy, actionOverlap } from './action.js';
import { podman, podmanUncompressed } from './podman.js';
import { seed } from './seed.js';
import {
  bothLogs,
  cleanHost,
  counterSpec,
  counterSum,
  log,
  type Migration,
  startCounter,
  type Way,
} from './way.js';

export const MIGRATIONS = {
  seed,
  action,
  podman,
  'podman-uncompressed': podmanUncompressed,
  'action-lazy': actionLazy,
  'action-overlap': actionOverlap,
} as const;

export function counterMigration(migration: Migration): Way<MigrationRun> {
  return {
    name: migration.way,
    async measure(ctx, size, rep) {
      const { bed } = ctx;
      const spec = counterSpec(ctx, `bench-${migration.way}-${size}m-${rep}`, size, migration.runtime);
      await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
      await startCounter(ctx, migration.runtime, bed.host1, spec, size);
      // The checksum before the move: its answer means the child computing it is gone again.
      const before = await counterSum(ctx, migration.runtime, bed.host1, spec.name, size);
      log(`${migration.way} ${size} MiB rep ${rep}: migrating`);
      const window = { fromMs: Date.now(), toMs: 0 };
      const moved = await migration.move(ctx, spec);
      window.toMs = Date.now();
      const where = { name: spec.name };
      const logs = await bothLogs(
        ctx,
        migration.runtime,
        { host: bed.host1, ...where },
        { host: bed.host2, ...where },
      );
      // Only gaps that overlap the move: a stall before it (the checksum of 1 GiB on a loaded machine) is not downtime.
      const seen = analyseDowntime(parseCounter(logs.sourceText), parseCounter(logs.targetText), window);
      const after = await counterSum(ctx, migration.runtime, bed.host2, spec.name, size);
      const memory = memoryVerdict(before, after);
      if (memory.status !== 'intact')
        log(`warning: ${spec.name}: memory ${memory.status} (${memory.why ?? ''})`);
      if (!seen.continued) log(`warning: ${spec.name} did not continue where it stopped on host 1`);
      log(
        `${migration.way} ${size} MiB rep ${rep}: down ${seen.downtimeMs} ms, total ${moved.totalMs} ms, ${moved.bytes ?? 'n/a'} bytes sent, memory ${memory.status}`,
      );
      await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
      return { method: migration.way, workload: 'counter', sizeMiB: size, rep, ...seen, ...moved, memory };
    },
  };
}
