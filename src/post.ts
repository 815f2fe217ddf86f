import * as core from '@actions/core';
import { errorMessage } from './errors.js';
import type { Host } from './host/host.js';
import { connectHosts } from './phases/connect.js';
import { type Runtime, SAVED } from './runtime.js';
import { lockContainer, runOwner, settleUnfinished } from './state/guard.js';
import { isUnfinished, parseRecord } from './state/journal.js';
import {
  forgetPostSecrets,
  type LoadedPostPlan,
  loadPostPlan,
  parseUnitMembers,
} from './state/post-state.js';

/**
 * The post step: GitHub runs it even when the job was cancelled, after the
 * main step was killed. If the main step's journal is still open it settles
 * it (rollback before the commit point, roll-forward after), exactly as a
 * later run would. It stands on what the main step saved, never on the inputs
 * (a later step may have removed the key file they name), and only ever warns:
 * the main step already reported.
 */
export async function runPost(runtime: Runtime): Promise<void> {
  const loaded = loadPostPlan(runtime);
  try {
    const members = parseUnitMembers(runtime.getState(SAVED.unitMembers));
    if (loaded && members.length > 0) {
      for (const secret of loaded.secrets) core.setSecret(secret);
      await settleMembers(loaded, members, runtime);
      return;
    }
    const saved = parseRecord(runtime.getState(SAVED.journal));
    if (!loaded || !saved || !isUnfinished(saved)) {
      runtime.log.info('post: the main step settled its journal (or had none); nothing to do');
      return;
    }
    for (const secret of loaded.secrets) core.setSecret(secret);
    runtime.log.warning(
      `post: the main step left the ${loaded.plan.mode} run ${saved.checkpointName} unfinished (cancelled or killed); settling it now`,
    );
    await settle(loaded, saved, runtime);
  } finally {
    if (loaded) forgetPostSecrets(loaded.plan);
  }
}

/**
 * A compose unit's run: each member's journal is read on the hosts (the saved state holds none of
 * them) and, when the main step left it open, settled as a later run would, member by member.
 */
async function settleMembers(
  { plan, connection }: LoadedPostPlan,
  members: readonly string[],
  runtime: Runtime,
): Promise<void> {
  const hosts: Host[] = [];
  try {
    const connected = await connectHosts(
      { ...connection, source: plan.source, target: plan.target },
      runtime.log,
    );
    hosts.push(connected.source, connected.target);
    const owner = runOwner(runtime.env, new Date(), runtime.newToken());
    for (const member of members) {
      const locks = await lockContainer(
        plan.lockSides.map((side) => connected[side]),
        member,
        owner,
        runtime.log,
      );
      try {
        const settled = await settleUnfinished(connected, member, runtime.log, undefined, plan.sides);
        if (!settled) continue;
        const how =
          settled.direction === 'roll-forward' ? 'finished (source retired)' : 'rolled back (source resumed)';
        runtime.log.warning(
          `post: the main step left ${member} of the unit unfinished; run ${settled.checkpointName} ${how}: ${settled.done.join('; ')}`,
        );
        await core.summary
          .addRaw(
            `<p>Post step: ${member} of the cancelled unit run ${settled.checkpointName} was ${how}.</p>`,
            true,
          )
          .write()
          .catch(() => {});
      } finally {
        await locks.release();
      }
    }
    runtime.log.info(`post: every member of the unit (${members.join(', ')}) is settled`);
  } catch (error) {
    runtime.log.warning(
      `post: could not settle the unit's members: ${errorMessage(error)}; the next run of this action for the unit will`,
    );
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}

async function settle(
  { plan, connection }: LoadedPostPlan,
  saved: NonNullable<ReturnType<typeof parseRecord>>,
  runtime: Runtime,
): Promise<void> {
  const hosts: Host[] = [];
  try {
    const connected = await connectHosts(
      { ...connection, source: plan.source, target: plan.target },
      runtime.log,
    );
    hosts.push(connected.source, connected.target);
    // The main step's lock carries the same token: taking it is not stealing it.
    const owner = { ...runOwner(runtime.env, new Date(), saved.owner.token) };
    const locks = await lockContainer(
      plan.lockSides.map((side) => connected[side]),
      saved.container,
      owner,
      runtime.log,
    );
    try {
      const settled = await settleUnfinished(connected, saved.container, runtime.log, saved, plan.sides);
      if (settled) {
        const how =
          settled.direction === 'roll-forward' ? 'finished (source retired)' : 'rolled back (source resumed)';
        runtime.log.info(`post: run ${settled.checkpointName} ${how}: ${settled.done.join('; ')}`);
        await core.summary
          .addRaw(`<p>Post step: the cancelled run ${settled.checkpointName} was ${how}.</p>`, true)
          .write()
          .catch(() => {});
      }
    } finally {
      await locks.release();
    }
  } catch (error) {
    runtime.log.warning(
      `post: could not settle the run: ${errorMessage(error)}; the next run of this action for ${saved.container} will`,
    );
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}
