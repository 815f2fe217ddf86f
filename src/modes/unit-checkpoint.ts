import * as core from '@actions/core';
import { inspectNetwork } from '../engine/docker/networks.js';
import { asMigrationError, errorMessage, MigrationError } from '../errors.js';
import type { Host } from '../host/host.js';
import { openHost, requireRoot } from '../host/host-factory.js';
import { runChecked, shellQuote } from '../host/shell.js';
import type { Logger } from '../phases/context.js';
import {
  type NetworkSpec,
  projectNetworks,
  restoreOrder,
  serviceOf,
  unitFailure,
  unitStatus,
} from '../policy/compose-unit.js';
import { containerNameOf } from '../policy/selection.js';
import {
  memberCheckpointName,
  parseUnitRecord,
  type UnitRecord,
  type UnitRecordMember,
  unitRecordPath,
  unitRecordsDir,
  unitRetentionPlan,
} from '../policy/unit-record.js';
import { metadataError } from '../report/metadata.js';
import { publishUnit, type UnitReport } from '../report/unit-report.js';
import { type Runtime, SAVED } from '../runtime.js';
import { type CheckpointSettings, describeLocation } from '../settings.js';
import { PRIVATE } from '../state/host-records.js';
import { type CheckpointManifest, checkpointDir } from '../state/store.js';
import { checkpointInto, collectImages } from './checkpoint.js';
import { findUnit } from './migrate/unit.js';
import { UnitCoordinator } from './migrate/unit-coordinator.js';
import { startRunControl } from './run-control.js';
import { runUnitMember, type MemberRun as UnitMemberRun } from './unit-member.js';

type UnitCheckpointSettings = CheckpointSettings & { compose: { project: string } };

const RECORD_SEPARATOR = '\n\u001e\n';

type MemberRun = Omit<UnitMemberRun<unknown>, 'result'> & {
  manifest?: CheckpointManifest;
  frozenMs?: number;
};

/**
 * Checkpoint mode for a compose project: every member frozen together and dumped while all
 * are frozen, each stored as a checkpoint of its own, then one unit record naming them, their
 * restore order and the project's networks. The record is the unit's commit point: written only
 * when every member's checkpoint is complete; on any failure the members' checkpoints of this
 * run go again, and every member was resumed on the source by its own rollback.
 */
export async function runUnitCheckpointMode(
  settings: UnitCheckpointSettings,
  runtime: Runtime,
): Promise<void> {
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
    source: describeLocation(settings.source),
    target: describeLocation(settings.store.host),
    startedAt: started.toISOString(),
    durationMs: 0,
    members: [],
    networks: [],
  };
  const opened: Host[] = [];
  let failure: MigrationError | undefined;
  let recordPath = '';
  try {
    const warn = (message: string): void => log.warning(message);
    const source = await openHost('source', settings.source, settings.ssh, settings.sudo, { warn });
    opened.push(source);
    const store = await openHost('store', settings.store.host, settings.ssh, settings.sudo, { warn });
    opened.push(store);
    report.source = source.address;
    report.target = store.address;
    await requireRoot(source, settings.source, settings.sudo);
    const unit = await findUnit(source, project);
    const { order, waitsFor } = restoreOrder(unit.members);
    const byName = new Map(unit.members.map((member) => [containerNameOf(member), member]));
    report.members = order.map((container) => ({
      container,
      service: serviceOf(byName.get(container) ?? unit.members[0]!),
      status: 'not started',
      sourceId: byName.get(container)?.Id,
    }));
    log.info(`unit ${unitName}: ${order.join(', ')} (restore order)`);
    // The post step reads each member's journal on the hosts when this run is killed.
    runtime.saveState(SAVED.unitMembers, JSON.stringify(order));
    const networks: NetworkSpec[] = [];
    for (const name of projectNetworks(unit.members)) {
      const spec = await inspectNetwork(source, name, 'checkpoint');
      if (!spec) {
        throw new MigrationError(
          'NETWORK_MISSING',
          `network ${name} of the project is gone from the source`,
          {
            step: 'preflight',
            remedy: `bring the project up again (docker compose -p ${project} up -d), then run again`,
          },
        );
      }
      networks.push(spec);
    }
    report.networks = networks.map((network) => ({ name: network.name, created: false }));

    const coordinator = new UnitCoordinator(order, waitsFor);
    const runs = await Promise.all(
      order.map((member) =>
        checkpointMember(settings, runtime, member, coordinator, control.signal, started),
      ),
    );
    for (const run of runs) {
      const entry = report.members.find((m) => m.container === run.member);
      if (!entry) continue;
      entry.status = run.status;
      if (run.frozenMs !== undefined) entry.downtimeMs = run.frozenMs;
      if (run.error) entry.error = metadataError(run.error);
    }
    report.leftovers = runs.flatMap((run) => run.problems);
    const frozen = runs.flatMap((run) => (run.frozenMs === undefined ? [] : [run.frozenMs]));
    if (frozen.length > 0) report.downtimeMs = Math.max(...frozen);
    if (runs.every((run) => run.status === 'succeeded' && run.manifest)) {
      const record: UnitRecord = {
        schema: 1,
        kind: 'compose',
        project,
        name: settings.checkpointName,
        createdAt: new Date().toISOString(),
        source: source.address,
        order,
        waitsFor: Object.fromEntries(waitsFor),
        members: runs.map((run) => memberOf(run, byName.get(run.member))),
        networks,
        ...(report.downtimeMs === undefined ? {} : { frozenMs: report.downtimeMs }),
      };
      recordPath = unitRecordPath(settings.store.path, project, settings.checkpointName);
      try {
        await writeUnitRecord(store, recordPath, record);
      } catch (error) {
        await removeMembers(store, settings, runs, report, log);
        throw error;
      }
      report.status = 'succeeded';
      log.info(`unit checkpoint ${settings.checkpointName} complete: ${recordPath}`);
      await core.group('Retention', () => applyUnitRetention(store, settings, source.address, log));
    } else {
      failure = unitFailure(
        coordinator.firstFailure,
        runs.map((r) => r.error),
      );
      // No record: the unit checkpoint does not exist; members a rollback could not undo stay named.
      await removeMembers(store, settings, runs, report, log);
      report.status = unitStatus(
        runs.map((run) => run.status),
        true,
      );
    }
  } catch (error) {
    failure = asMigrationError(error, 'COMMAND_FAILED');
  } finally {
    control.close();
    await Promise.allSettled(opened.map((host) => host.close()));
  }
  report.durationMs = Math.round(performance.now() - start);
  if (failure) report.error = metadataError(failure);
  await publishUnit(report, settings.checkpointName, runtime.env);
  core.setOutput('checkpoint-path', report.status === 'succeeded' ? recordPath : '');
  core.setOutput('frozen-ms', report.downtimeMs ?? '');
  for (const leftover of report.leftovers ?? []) core.warning(`left to clean up: ${leftover}`);
  if (failure) runtime.fail(failure);
  else
    log.info(
      `checkpointed ${unitName} (${report.members.length} containers) as ${settings.checkpointName}: frozen together for ${report.downtimeMs} ms`,
    );
}

/** One member's checkpoint: its own connections, lock and journal; it meets the others through `coordinator`. */
async function checkpointMember(
  settings: UnitCheckpointSettings,
  runtime: Runtime,
  member: string,
  coordinator: UnitCoordinator,
  signal: AbortSignal,
  started: Date,
): Promise<MemberRun> {
  const memberSettings: CheckpointSettings = {
    ...settings,
    container: member,
    checkpointName: memberCheckpointName(settings.checkpointName, member),
  };
  let frozenMs: number | undefined;
  const run = await runUnitMember(
    { name: member, settings: memberSettings, record: { sourceAfter: 'stop', retireSource: false } },
    { coordinator, runtime, signal, started },
    {
      step: 'checkpoint',
      code: 'CHECKPOINT_FAILED',
      remedy: 'nothing to undo by hand: every member was resumed and no unit checkpoint was written',
    },
    (session, log) =>
      checkpointInto(
        { ...session.ctx, log },
        session.owner,
        (ms) => {
          frozenMs = ms;
        },
        (held) => session.defer(() => held.release()),
        () => {},
        coordinator.hooksFor(member),
      ),
  );
  const { result, ...rest } = run;
  return {
    ...rest,
    ...(result ? { manifest: result } : {}),
    ...(frozenMs === undefined ? {} : { frozenMs }),
  };
}

function memberOf(run: MemberRun, inspect: Parameters<typeof serviceOf>[0] | undefined): UnitRecordMember {
  const manifest = run.manifest!;
  const networks = inspect?.NetworkSettings.Networks ?? {};
  return {
    container: run.member,
    service: inspect ? serviceOf(inspect) : run.member,
    id: manifest.container.id,
    checkpoint: manifest.name,
    series: manifest.series ?? '',
    endpoints: Object.entries(networks)
      .filter(([, endpoint]) => endpoint.Aliases !== undefined || endpoint.IPAddress)
      .map(([network, endpoint]) => ({
        network,
        ...(endpoint.IPAddress ? { address: endpoint.IPAddress } : {}),
        aliases: endpoint.Aliases ?? [],
      })),
  };
}

/** Written under a temporary name, then renamed: a reader sees the whole record or none. */
async function writeUnitRecord(store: Host, path: string, record: UnitRecord): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/'));
  await runChecked(
    store,
    `${PRIVATE} mkdir -p ${shellQuote([dir])} && cat >${shellQuote([`${path}.partial`])} && mv -f ${shellQuote([`${path}.partial`, path])}`,
    {
      step: 'store',
      what: 'writing the unit record',
      options: { input: `${JSON.stringify(record, null, 2)}\n` },
    },
  );
}

/** The member checkpoints this run completed, removed again when the unit is not whole. */
async function removeMembers(
  store: Host,
  settings: UnitCheckpointSettings,
  runs: readonly MemberRun[],
  report: UnitReport,
  log: Logger,
): Promise<void> {
  for (const run of runs) {
    if (!run.manifest) continue;
    const dir = checkpointDir(settings.store.path, run.member, run.manifest.series ?? '', run.manifest.name);
    try {
      await runChecked(store, `rm -rf -- ${shellQuote([dir])}`, {
        step: 'rollback',
        what: `removing the checkpoint of ${run.member}`,
      });
      log.info(`removed ${dir}: the unit checkpoint is not whole without every member`);
    } catch (error) {
      report.leftovers = [
        ...(report.leftovers ?? []),
        `checkpoint ${dir} in the store (not part of any unit checkpoint): ${errorMessage(error)}; remove it by hand`,
      ];
    }
  }
}

/** Every unit record of the project in the store, complete or not parsed (skipped). */
export async function listUnitRecords(store: Host, path: string, project: string): Promise<UnitRecord[]> {
  const dir = unitRecordsDir(path, project);
  const listed = await runChecked(
    store,
    `for f in ${shellQuote([dir])}/*.json; do [ -f "$f" ] || continue; cat "$f"; printf '\\n\\036\\n'; done`,
    { step: 'store', what: 'listing the unit checkpoints in the store', options: { timeoutMs: 60_000 } },
  );
  return listed.stdout
    .split(RECORD_SEPARATOR)
    .map((text) => parseUnitRecord(text))
    .filter((record): record is UnitRecord => record !== undefined && record.project === project);
}

/**
 * Retention per unit: the newest `retention` unit checkpoints of the project from this source
 * stay; an older one goes record first (it stops being a unit), then its members' checkpoints.
 */
async function applyUnitRetention(
  store: Host,
  settings: UnitCheckpointSettings,
  source: string,
  log: Logger,
): Promise<void> {
  const path = settings.store.path;
  const project = settings.compose.project;
  try {
    const old = unitRetentionPlan(await listUnitRecords(store, path, project), source, settings.retention);
    for (const record of old) {
      const dirs = record.members.map((member) =>
        checkpointDir(path, member.container, member.series, member.checkpoint),
      );
      await runChecked(
        store,
        `rm -f -- ${shellQuote([unitRecordPath(path, project, record.name)])} && rm -rf -- ${shellQuote(dirs)}`,
        { step: 'retention', what: `removing unit checkpoint ${record.name}` },
      );
      log.info(
        `retention: removed unit checkpoint ${record.name} (keeping the newest ${settings.retention})`,
      );
    }
    await collectImages(store, path, log);
  } catch (error) {
    log.warning(`retention did not finish: ${errorMessage(error)}`);
  }
}
