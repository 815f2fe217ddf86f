import * as core from '@actions/core';
import { inspectNetwork, runNetworkCommand } from './engine/docker/networks.js';
import { errorMessage } from './errors.js';
import type { Host } from './host/host.js';
import { connectHosts } from './phases/connect.js';
import { type Runtime, SAVED } from './runtime.js';
import { lockContainer, runOwner, settleUnfinished } from './state/guard.js';
import { isUnitCommitPath, removeUnitCommit } from './state/host-records.js';
import { isUnfinished, type JournalRecord, parseRecord } from './state/journal.js';
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
    const open = savedRecords(runtime).filter(isUnfinished);
    // A unit run whose members' journals the saved state does not hold (checkpoint, restore):
    // read on the hosts.
    const members = parseUnitMembers(runtime.getState(SAVED.unitMembers));
    if (loaded && open.length === 0 && members.length > 0 && !runtime.getState(SAVED.unitJournals)) {
      for (const secret of loaded.secrets) core.setSecret(secret);
      await settleMembers(loaded, members, runtime);
      return;
    }
    if (!loaded || open.length === 0) {
      runtime.log.info('post: the main step settled its journal (or had none); nothing to do');
      return;
    }
    for (const secret of loaded.secrets) core.setSecret(secret);
    for (const saved of open)
      runtime.log.warning(
        `post: the main step left the ${loaded.plan.mode} run ${saved.checkpointName} of ${saved.container} unfinished (cancelled or killed); settling it now`,
      );
    await settle(loaded, open, runtime);
  } finally {
    if (loaded) forgetPostSecrets(loaded.plan);
  }
}

/** The main step's journal, or every member's journal of a compose unit's run. */
function savedRecords(runtime: Runtime): JournalRecord[] {
  const single = parseRecord(runtime.getState(SAVED.journal));
  if (single) return [single];
  let members: unknown;
  try {
    members = JSON.parse(runtime.getState(SAVED.unitJournals) || '{}');
  } catch {
    return [];
  }
  if (typeof members !== 'object' || members === null) return [];
  return Object.values(members).flatMap((text) => {
    const record = typeof text === 'string' ? parseRecord(text) : undefined;
    return record ? [record] : [];
  });
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
  open: JournalRecord[],
  runtime: Runtime,
): Promise<void> {
  const hosts: Host[] = [];
  try {
    const connected = await connectHosts(
      { ...connection, source: plan.source, target: plan.target },
      runtime.log,
    );
    hosts.push(connected.source, connected.target);
    const directions: (string | false)[] = [];
    for (const saved of open) directions.push(await settleOne(connected, plan, saved, runtime));
    const settledAll = directions.every((direction) => direction !== false);
    // A unit rolled back leaves no network of its own on the target (one still in use stays, said so).
    if (settledAll && directions.every((direction) => direction !== 'roll-forward'))
      await removeUnitNetworks(connected.target, runtime);
    // A unit's commit marker is needed only while one of its members' journals is open.
    const markers = new Set(open.flatMap((saved) => (saved.unitCommit ? [saved.unitCommit] : [])));
    for (const marker of settledAll ? markers : []) {
      if (!isUnitCommitPath(marker)) continue;
      const removed = await Promise.allSettled([
        removeUnitCommit(connected.source, marker),
        removeUnitCommit(connected.target, marker),
      ]);
      for (const result of removed)
        if (result.status === 'rejected')
          runtime.log.warning(
            `post: could not remove the unit's commit marker: ${errorMessage(result.reason)}`,
          );
    }
  } catch (error) {
    runtime.log.warning(
      `post: could not settle the run: ${errorMessage(error)}; the next run of this action for ${open.map((saved) => saved.container).join(', ')} will`,
    );
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}

async function settleOne(
  connected: { source: Host; target: Host },
  plan: LoadedPostPlan['plan'],
  saved: JournalRecord,
  runtime: Runtime,
): Promise<string | false> {
  let direction = 'nothing';
  try {
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
      direction = settled?.direction ?? 'nothing';
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
    return direction;
  } catch (error) {
    runtime.log.warning(
      `post: could not settle the run of ${saved.container}: ${errorMessage(error)}; the next run of this action for ${saved.container} will`,
    );
    return false;
  }
}

async function removeUnitNetworks(target: Host, runtime: Runtime): Promise<void> {
  let names: unknown;
  try {
    names = JSON.parse(runtime.getState(SAVED.unitNetworks) || '[]');
  } catch {
    return;
  }
  if (!Array.isArray(names)) return;
  for (const name of names) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) continue;
    try {
      if (await inspectNetwork(target, name, 'rollback')) {
        await runNetworkCommand(target, ['network', 'rm', name], 'rollback');
        runtime.log.info(`post: network ${name} removed from the target again`);
      }
    } catch (error) {
      runtime.log.warning(
        `post: network ${name} stays on the target: ${errorMessage(error)}; remove it by hand (docker network rm ${name})`,
      );
    }
  }
}
