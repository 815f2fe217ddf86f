import * as core from '@actions/core';
import { inspectNetwork, runNetworkCommand } from '../engine/docker/networks.js';
import { asMigrationError, errorMessage, MigrationError } from '../errors.js';
import type { Host } from '../host/host.js';
import { openHost, requireRoot } from '../host/host-factory.js';
import { networkCreateArgs, networkDifferences, unitFailure, unitStatus } from '../policy/compose-unit.js';
import { chooseUnitRecord, newestUnitsFirst, type UnitRecord } from '../policy/unit-record.js';
import { metadataError } from '../report/metadata.js';
import { publishUnit, type UnitReport } from '../report/unit-report.js';
import { type Runtime, SAVED } from '../runtime.js';
import { describeLocation, type RestoreSettings } from '../settings.js';
import { unitCommitPath } from '../state/host-records.js';
import { writeSeries } from '../state/series.js';
import { removeUnitCommitEverywhere, writeUnitCommitEverywhere } from '../state/unit-commit.js';
import { removeCreatedNetworks } from './migrate/unit.js';
import { UnitCoordinator } from './migrate/unit-coordinator.js';
import { restoreFromStore } from './restore.js';
import { startRunControl } from './run-control.js';
import { listUnitRecords } from './unit-checkpoint.js';
import { runUnitMember, type MemberRun as UnitMemberRun } from './unit-member.js';

type UnitRestoreSettings = RestoreSettings & { compose: { project: string } };

type MemberRun = Omit<UnitMemberRun<unknown>, 'result'> & { targetId?: string };

/**
 * Restore mode for a compose project: the newest complete unit checkpoint (or the named one),
 * its networks created on the target (one of the same name that differs is refused), every
 * member restored in dependency order with its addresses and aliases, all verified before any
 * commits, and rolled back together on any failure. The store is only read.
 */
export async function runUnitRestoreMode(settings: UnitRestoreSettings, runtime: Runtime): Promise<void> {
  const { log } = runtime;
  const started = new Date();
  const start = performance.now();
  const control = startRunControl(settings.timeoutMinutes, runtime);
  const project = settings.compose.project;
  const unitName = `compose:${project}`;
  const report: UnitReport = {
    schemaVersion: 1,
    unit: unitName,
    status: 'refused',
    source: describeLocation(settings.store.host),
    target: describeLocation(settings.target),
    startedAt: started.toISOString(),
    durationMs: 0,
    members: [],
    networks: [],
  };
  const opened: Host[] = [];
  let failure: MigrationError | undefined;
  let chosen: UnitRecord | undefined;
  let target: Host | undefined;
  try {
    const warn = (message: string): void => log.warning(message);
    const store = await openHost('store', settings.store.host, settings.ssh, settings.sudo, { warn });
    opened.push(store);
    target = await openHost('target', settings.target, settings.ssh, settings.sudo, { warn });
    opened.push(target);
    report.source = store.address;
    report.target = target.address;
    await requireRoot(target, settings.target, settings.sudo);
    const records = await listUnitRecords(store, settings.store.path, project);
    chosen = chooseUnitRecord(records, settings.restoreFrom ? { name: settings.restoreFrom } : {});
    if (!chosen) {
      throw new MigrationError(
        'CHECKPOINT_NOT_FOUND',
        `the store has no complete unit checkpoint${settings.restoreFrom ? ` ${settings.restoreFrom}` : ''} of compose project ${project}`,
        {
          step: 'restore',
          detail:
            records.length > 0
              ? `complete unit checkpoints: ${newestUnitsFirst(records)
                  .map((record) => `${record.name} (${record.createdAt}, from ${record.source})`)
                  .join(', ')}`
              : undefined,
          remedy: `check store-host, store-path (${settings.store.path}) and the project; take one with mode: checkpoint and unit: compose:${project}`,
        },
      );
    }
    const unit = chosen;
    log.info(
      `restoring unit checkpoint ${unit.name} of ${unitName} (taken ${unit.createdAt} on ${unit.source}): ${unit.order.join(', ')} (restore order)`,
    );
    // The post step reads each member's journal on the hosts when this run is killed.
    runtime.saveState(SAVED.unitMembers, JSON.stringify(unit.order));
    report.members = unit.order.map((container) => {
      const member = unit.members.find((m) => m.container === container);
      return {
        container,
        service: member?.service ?? container,
        status: 'not started',
        sourceId: member?.id,
      };
    });
    // The networks first, as the source had them; a namesake that differs is never changed.
    const connected = target;
    const toCreate = [];
    for (const spec of unit.networks) {
      const there = await inspectNetwork(connected, spec.name, 'preflight');
      const differences = there ? networkDifferences(spec, there) : [];
      if (differences.length > 0) {
        throw new MigrationError(
          'COMPOSE_NETWORK_CONFLICT',
          `unit ${unitName} refused before touching the target: the target has a network ${spec.name} with ${differences.join(', ')}`,
          {
            step: 'preflight',
            remedy: `remove that network on the target (docker network rm ${spec.name}) if nothing uses it, or restore the project onto another host`,
          },
        );
      }
      report.networks.push({ name: spec.name, created: false });
      if (!there) toCreate.push(spec);
    }
    for (const spec of toCreate) {
      await runNetworkCommand(connected, networkCreateArgs(spec), 'stage');
      const entry = report.networks.find((n) => n.name === spec.name);
      if (entry) entry.created = true;
      log.info(`network ${spec.name} created on the target (${spec.ipam.map((p) => p.subnet).join(', ')})`);
    }
    // One commit point for the unit (see JournalRecord.unitCommit), on the store and the target.
    const commitMarker = unitCommitPath(`${project}-${runtime.newToken()}`);
    const markerHosts = { source: store, target: connected };
    const coordinator = new UnitCoordinator(unit.order, new Map(Object.entries(unit.waitsFor)), () =>
      writeUnitCommitEverywhere(markerHosts, commitMarker),
    );
    const runs = await Promise.all(
      unit.order.map((member) =>
        restoreMember(
          settings,
          runtime,
          unit,
          member,
          { coordinator, commitMarker },
          control.signal,
          started,
        ),
      ),
    );
    if (runs.every((run) => run.status !== 'failed'))
      await removeUnitCommitEverywhere(markerHosts, commitMarker, log);
    for (const run of runs) {
      const entry = report.members.find((m) => m.container === run.member);
      if (!entry) continue;
      entry.status = run.status;
      if (run.targetId) entry.targetId = run.targetId;
      if (run.error) entry.error = metadataError(run.error);
    }
    report.leftovers = runs.flatMap((run) => run.problems);
    report.status = unitStatus(runs.map((run) => run.status));
    if (report.status !== 'succeeded') {
      failure = unitFailure(
        coordinator.firstFailure,
        runs.map((r) => r.error),
      );
      if (report.status !== 'failed') await removeCreatedNetworks(connected, report, log);
    }
  } catch (error) {
    failure = asMigrationError(error, 'COMMAND_FAILED');
    if (target) await removeCreatedNetworks(target, report, log);
  } finally {
    control.close();
    await Promise.allSettled(opened.map((host) => host.close()));
  }
  report.durationMs = Math.round(performance.now() - start);
  if (failure) report.error = metadataError(failure);
  // checkpoint-name says which unit checkpoint was restored, as it does for one container.
  await publishUnit(report, chosen?.name ?? settings.checkpointName, runtime.env);
  for (const leftover of report.leftovers ?? []) core.warning(`left to clean up: ${leftover}`);
  if (failure) runtime.fail(failure);
  else
    log.info(
      `restored ${unitName} (${report.members.length} containers) from unit checkpoint ${chosen?.name}`,
    );
}

/** One member's restore: its own connections, lock and journal; it meets the others through `coordinator`. */
async function restoreMember(
  settings: UnitRestoreSettings,
  runtime: Runtime,
  unit: UnitRecord,
  member: string,
  { coordinator, commitMarker }: { coordinator: UnitCoordinator; commitMarker: string },
  signal: AbortSignal,
  started: Date,
): Promise<MemberRun> {
  const stored = unit.members.find((m) => m.container === member);
  const memberSettings: RestoreSettings = {
    ...settings,
    container: member,
    checkpointName: stored?.checkpoint ?? member,
    ...(stored ? { restoreFrom: stored.checkpoint, series: stored.series } : {}),
    keepAddresses: true,
  };
  const run = await runUnitMember(
    {
      name: member,
      settings: memberSettings,
      record: { sourceAfter: 'stop', retireSource: false, unitCommit: commitMarker },
    },
    { coordinator, runtime, signal, started },
    {
      step: 'restore',
      code: 'RESTORE_FAILED',
      remedy:
        'nothing to undo by hand: nothing of the unit stays on the target; the unit checkpoint in the store is untouched',
    },
    (session, log) =>
      restoreFromStore(
        { ...session.ctx, log },
        () => {},
        () => {},
        coordinator.hooksFor(member),
      ),
    async (session, restored, log) => {
      if (!stored) return;
      // The restored member continues its checkpoint's series, as a restored container does.
      await writeSeries(session.durable.target, {
        series: stored.series,
        containerId: restored.targetContainerId,
        from: stored.id,
        via: 'restore',
        at: new Date().toISOString(),
      }).catch((caught: unknown) =>
        log.warning(
          `could not record series ${stored.series} for the restored container: ${errorMessage(caught)}`,
        ),
      );
    },
  );
  const { result, ...rest } = run;
  return { ...rest, ...(result ? { targetId: result.targetContainerId } : {}) };
}
