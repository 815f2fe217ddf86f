import * as core from '@actions/core';
import { errorMessage } from './errors.js';
import type { Host } from './host/host.js';
import { connectHosts } from './phases/connect.js';
import { type Runtime, SAVED } from './runtime.js';
import type { HostLocation, Settings } from './settings.js';
import { lockContainer, runOwner, settleUnfinished } from './state/guard.js';
import { isUnfinished, parseRecord, type Side } from './state/journal.js';

/**
 * The post step: GitHub runs it even when the job was cancelled, after the
 * main step was killed. If the main step's journal is still open it settles
 * it (rollback before the commit point, roll-forward after), exactly as a
 * later run would. It only ever warns: the main step already reported.
 */
export async function runPost(settings: Settings, runtime: Runtime): Promise<void> {
  const saved = parseRecord(runtime.getState(SAVED.journal));
  if (!saved || !isUnfinished(saved)) {
    runtime.log.info('post: the main step settled its journal; nothing to do');
    return;
  }
  const locations = journalHosts(settings);
  if (!locations) return;
  runtime.log.warning(
    `post: the main step left the migration ${saved.checkpointName} unfinished (cancelled or killed); settling it now`,
  );
  const hosts: Host[] = [];
  try {
    const connected = await connectHosts({ ...settings, ...locations }, runtime.log);
    hosts.push(connected.source, connected.target);
    // The main step's lock carries the same token: taking it is not stealing it.
    const owner = { ...runOwner(runtime.env, new Date(), saved.owner.token) };
    // Checkpoint mode keeps its journal and lock on the source only (the store host is shared).
    const sides: Side[] = settings.mode === 'checkpoint' ? ['source'] : ['source', 'target'];
    const locks = await lockContainer(
      sides.map((side) => connected[side]),
      saved.container,
      owner,
      runtime.log,
    );
    try {
      const settled = await settleUnfinished(connected, saved.container, runtime.log, saved, sides);
      if (settled) {
        const how =
          settled.direction === 'roll-forward' ? 'finished (source retired)' : 'rolled back (source resumed)';
        runtime.log.info(`post: migration ${settled.checkpointName} ${how}: ${settled.done.join('; ')}`);
        await core.summary
          .addRaw(`<p>Post step: the cancelled migration ${settled.checkpointName} was ${how}.</p>`, true)
          .write()
          .catch(() => {});
      }
    } finally {
      await locks.release();
    }
  } catch (error) {
    runtime.log.warning(
      `post: could not settle the migration: ${errorMessage(error)}; the next run of this action for ${saved.container} will`,
    );
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}

/** The two hosts a mode's journal names as its source and target. */
export function journalHosts(settings: Settings): { source: HostLocation; target: HostLocation } | undefined {
  switch (settings.mode) {
    case 'migrate':
      return { source: settings.source, target: settings.target };
    case 'checkpoint':
      return { source: settings.source, target: settings.store.host };
    case 'restore':
    case 'drill':
      return { source: settings.store.host, target: settings.target };
    case 'preflight':
    case 'list':
      return undefined;
  }
}
