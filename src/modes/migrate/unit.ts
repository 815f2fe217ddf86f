import * as core from '@actions/core';
import { DockerCli } from '../../engine/docker/docker-cli.js';
import { inspectNetwork, runNetworkCommand } from '../../engine/docker/networks.js';
import { asMigrationError, errorMessage, MigrationError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { requireRoot } from '../../host/host-factory.js';
import { connectHosts } from '../../phases/connect.js';
import type { Logger } from '../../phases/context.js';
import { formatCheck, gatherSharedHostFacts } from '../../phases/preflight.js';
import { gateComposeUnit, type UnitGate } from '../../phases/unit-gate.js';
import { blocking } from '../../policy/compatibility.js';
import {
  networkCreateArgs,
  restoreOrder,
  serviceOf,
  unitFailure,
  unitStatus,
} from '../../policy/compose-unit.js';
import { COMPOSE_PROJECT_LABEL, containerNameOf, resolveUnits, type Unit } from '../../policy/selection.js';
import { metadataError } from '../../report/metadata.js';
import { PhaseTimer } from '../../report/timings.js';
import { publishUnit, type UnitReport } from '../../report/unit-report.js';
import { type Runtime, SAVED } from '../../runtime.js';
import { describeLocation, type MigrateSettings } from '../../settings.js';
import { archiveEverywhere, lockContainer, runOwner, settleUnfinished } from '../../state/guard.js';
import { unitCommitPath } from '../../state/host-records.js';
import { isUnfinished, type JournalRecord } from '../../state/journal.js';
import { removeUnitCommitEverywhere, writeUnitCommitEverywhere } from '../../state/unit-commit.js';
import { startRunControl } from '../run-control.js';
import { beginSession, SessionCloser } from '../session.js';
import { type MigrationOutcome, migrate } from './migration.js';
import { UnitCoordinator } from './unit-coordinator.js';

type ComposeSettings = MigrateSettings & { compose: { project: string } };

/** Finds the project's unit on the source: every member running, or a refusal naming the rest. */
export async function findUnit(source: Host, project: string): Promise<Unit> {
  const resolved = resolveUnits(await new DockerCli(source).listContainers('preflight'), {
    kind: 'compose',
    project,
  });
  const unit = resolved.units.find((candidate) => candidate.kind === 'compose');
  if (resolved.leftOut.length > 0 || !unit) {
    throw new MigrationError(
      unit ? 'CONTAINER_NOT_RUNNING' : 'CONTAINER_NOT_FOUND',
      unit
        ? `compose project ${project}: ${resolved.leftOut.map((left) => `${left.container} (${left.reason})`).join(', ')}: a unit moves only with every member running`
        : `the source has no running container of compose project ${project}`,
      {
        step: 'preflight',
        remedy: unit
          ? 'start or remove those containers of the project (docker compose -p <project> up -d, or docker rm), then run again'
          : 'check the project name (docker compose ls on the source, or the gate matrix)',
      },
    );
  }
  return unit;
}

/** The gate of the whole unit before anything is touched; throws the first blocking check. */
async function gateUnit(
  settings: ComposeSettings,
  hosts: { source: Host; target: Host },
  unit: Unit,
  log: Logger,
) {
  const gate = await gateComposeUnit(
    {
      settings,
      ...hosts,
      sourceDocker: new DockerCli(hosts.source),
      targetDocker: new DockerCli(hosts.target),
      log,
    },
    unit,
    gatherSharedHostFacts(hosts),
  );
  for (const check of gate.checks) if (check.status !== 'pass') log.info(formatCheck(check));
  const failed = blocking(gate.checks, settings.strict);
  if (failed.length > 0) {
    throw new MigrationError(
      failed[0]?.code ?? 'PREFLIGHT_FAILED',
      `unit ${unit.name} refused before touching it: ${failed.map((check) => `[${check.host}] ${check.name}: ${check.observed}`).join('; ')}`,
      { step: 'preflight', remedy: failed[0]?.remedy, detail: failed.map(formatCheck).join('\n') },
    );
  }
  return gate;
}

interface MemberRun {
  member: string;
  outcome?: MigrationOutcome;
  error?: MigrationError;
  /** Its journal is still open on the hosts (a later run or the post step settles it). */
  open: boolean;
}

/**
 * What the unit's members tell the post step: each member's journal as it is now, under one
 * saved name (the runner's state holds one value per name).
 */
class UnitJournals {
  private readonly records = new Map<string, string>();

  constructor(private readonly runtime: Runtime) {}

  runtimeFor(member: string): Runtime {
    return {
      ...this.runtime,
      saveState: (name, value) => {
        if (name !== SAVED.journal) return;
        this.records.set(member, value);
        this.runtime.saveState(SAVED.unitJournals, JSON.stringify(Object.fromEntries(this.records)));
      },
    };
  }
}

/** One member's migration: its own connections, lock and journal; it meets the others through `coordinator`. */
async function runMember(
  settings: ComposeSettings,
  unit: { runtime: Runtime; coordinator: UnitCoordinator; commitMarker: string },
  member: string,
  signal: AbortSignal,
  started: Date,
): Promise<MemberRun> {
  const { runtime, coordinator } = unit;
  const { log } = runtime;
  const closer = new SessionCloser();
  let journal: { record: JournalRecord } | undefined;
  const memberSettings: MigrateSettings = {
    ...settings,
    container: member,
    // Each member's images and work directory under its own name.
    checkpointName: `${settings.checkpointName}-${member}`.slice(0, 128),
    keepAddresses: true,
  };
  try {
    const clock = () => performance.now();
    const { session } = await beginSession(
      {
        settings: memberSettings,
        record: { sourceAfter: settings.sourceAfter, unitCommit: unit.commitMarker },
      },
      { runtime },
      { signal, timer: new PhaseTimer(), clock, started, startedAt: clock(), closer },
    );
    journal = session.journal;
    const outcome = await migrate({
      settings: memberSettings,
      ...session.opened,
      recoveryHosts: session.durable,
      log: prefixed(log, member),
      timer: session.timer,
      journal: session.journal,
      signal,
      unit: coordinator.hooksFor(member),
    });
    if (!isUnfinished(session.journal.record) && outcome.error?.code !== 'COMMIT_NOT_DURABLE')
      await archiveEverywhere(session.durable, session.journal.record, log);
    return {
      member,
      outcome,
      ...(outcome.error ? { error: outcome.error } : {}),
      open: isUnfinished(session.journal.record),
    };
  } catch (error) {
    const failure = asMigrationError(error, 'COMMAND_FAILED');
    coordinator.fail(member, failure);
    return { member, error: failure, open: journal ? isUnfinished(journal.record) : false };
  } finally {
    await closer.close();
  }
}

/** The members' lines in the job log, each named, since they run side by side. */
export function prefixed(log: Logger, member: string): Logger {
  return {
    info: (message) => log.info(`[${member}] ${message}`),
    warning: (message) => log.warning(`[${member}] ${message}`),
    group: (_name, fn) => fn(),
  };
}

/**
 * Migrate mode for a compose project: the unit's gate, its networks on the target, then every
 * member's migration side by side, frozen together, restored in dependency order, committed
 * only when every member is verified, and rolled back together when any fails.
 */
export async function runUnitMigrateMode(settings: ComposeSettings, runtime: Runtime): Promise<void> {
  const { log } = runtime;
  const started = new Date();
  const start = performance.now();
  const control = startRunControl(settings.timeoutMinutes, runtime);
  const unitName = `compose:${settings.compose.project}`;
  const report: UnitReport = {
    schemaVersion: 1,
    unit: unitName,
    status: 'refused',
    source: describeLocation(settings.source),
    target: describeLocation(settings.target),
    startedAt: started.toISOString(),
    durationMs: 0,
    members: [],
    networks: [],
  };
  let hosts: { source: Host; target: Host } | undefined;
  let failure: MigrationError | undefined;
  try {
    hosts = await connectHosts(settings, log);
    report.source = hosts.source.address;
    report.target = hosts.target.address;
    await requireRoot(hosts.source, settings.source, settings.sudo);
    await requireRoot(hosts.target, settings.target, settings.sudo);
    const connected = hosts;
    const settled = await settleEarlierRun(connected, settings.compose.project, runtime, started);
    if (settled.length > 0) report.settled = settled;
    const unit = await findUnit(connected.source, settings.compose.project);
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
    const gate: UnitGate = await core.group(`Gate: unit ${unitName}`, () =>
      gateUnit(settings, connected, unit, log),
    );
    report.networks = gate.networks.map((network) => ({ name: network.spec.name, created: false }));
    for (const network of gate.networks.filter((n) => n.create)) {
      await runNetworkCommand(connected.target, networkCreateArgs(network.spec), 'stage');
      const entry = report.networks.find((n) => n.name === network.spec.name);
      if (entry) entry.created = true;
      // The post step removes them again when it rolls the unit back.
      runtime.saveState(
        SAVED.unitNetworks,
        JSON.stringify(report.networks.filter((n) => n.created).map((n) => n.name)),
      );
      log.info(
        `network ${network.spec.name} created on the target (${network.spec.ipam.map((p) => p.subnet).join(', ')})`,
      );
    }
    const commitMarker = unitCommitPath(`${settings.compose.project}-${runtime.newToken()}`);
    const coordinator = new UnitCoordinator(order, waitsFor, () =>
      writeUnitCommitEverywhere(connected, commitMarker),
    );
    const journals = new UnitJournals(runtime);
    const runs = await Promise.all(
      order.map((member) =>
        runMember(
          settings,
          { runtime: journals.runtimeFor(member), coordinator, commitMarker },
          member,
          control.signal,
          started,
        ),
      ),
    );
    // The marker is needed only while a member's journal is open.
    if (runs.every((run) => !run.open)) await removeUnitCommitEverywhere(connected, commitMarker, log);
    for (const run of runs) {
      const entry = report.members.find((m) => m.container === run.member);
      if (!entry) continue;
      const metadata = run.outcome?.metadata;
      entry.status = metadata?.run.status ?? 'failed';
      if (metadata?.container.targetId) entry.targetId = metadata.container.targetId;
      if (metadata?.timings.downtimeMs !== undefined) entry.downtimeMs = metadata.timings.downtimeMs;
      if (run.error) entry.error = metadataError(run.error);
    }
    const statuses = new Set(report.members.map((m) => m.status));
    report.leftovers = runs.flatMap((run) => run.outcome?.leftovers ?? []);
    const downtimes = report.members.flatMap((m) => (m.downtimeMs === undefined ? [] : [m.downtimeMs]));
    if (downtimes.length > 0) report.downtimeMs = Math.max(...downtimes);
    report.status = unitStatus([...statuses]);
    if (report.status !== 'succeeded') {
      failure = unitFailure(
        coordinator.firstFailure,
        runs.map((r) => r.error),
      );
      if (report.status !== 'failed') await removeCreatedNetworks(connected.target, report, log);
    }
  } catch (error) {
    failure = asMigrationError(error, 'COMMAND_FAILED');
    if (hosts) await removeCreatedNetworks(hosts.target, report, log);
  } finally {
    control.close();
    if (hosts) await Promise.allSettled([hosts.source.close(), hosts.target.close()]);
  }
  report.durationMs = Math.round(performance.now() - start);
  if (failure) report.error = metadataError(failure);
  await publishUnit(report, settings.checkpointName, runtime.env);
  for (const leftover of report.leftovers ?? []) core.warning(`left to clean up: ${leftover}`);
  if (failure) runtime.fail(failure);
  else
    log.info(
      `migrated ${unitName} (${report.members.length} containers): frozen for ${report.downtimeMs} ms`,
    );
}

/**
 * What an earlier run of this unit left open (a member paused on the source, one created on the
 * target), settled member by member from its journals before the gate looks at the project.
 */
export async function settleEarlierRun(
  hosts: { source: Host; target: Host },
  project: string,
  runtime: Runtime,
  started: Date,
): Promise<string[]> {
  const { log } = runtime;
  const members = (await new DockerCli(hosts.source).listContainers('preflight'))
    .filter((container) => container.Config.Labels?.[COMPOSE_PROJECT_LABEL] === project)
    .map(containerNameOf);
  const owner = runOwner(runtime.env, started, runtime.newToken());
  const done: string[] = [];
  for (const member of members) {
    const locks = await lockContainer([hosts.source, hosts.target], member, owner, log);
    try {
      const resumed = await settleUnfinished(hosts, member, log);
      if (resumed && resumed.direction !== 'nothing') {
        done.push(
          `${member}: ${resumed.direction} of ${resumed.checkpointName} (${resumed.done.join('; ')})`,
        );
        log.info(`settled the earlier run of ${member}: ${resumed.direction}`);
      }
    } finally {
      await locks.release().catch(() => {});
    }
  }
  return done;
}

/** A rolled-back unit leaves no network of its own on the target (one in use stays, said so). */
export async function removeCreatedNetworks(target: Host, report: UnitReport, log: Logger): Promise<void> {
  for (const network of report.networks.filter((n) => n.created)) {
    try {
      if (await inspectNetwork(target, network.name, 'rollback')) {
        await runNetworkCommand(target, ['network', 'rm', network.name], 'rollback');
      }
      network.removed = true;
      log.info(`network ${network.name} removed from the target again`);
    } catch (error) {
      const leftover = `network ${network.name} on the target: ${errorMessage(error)}; remove it by hand (docker network rm ${network.name})`;
      report.leftovers = [...(report.leftovers ?? []), leftover];
    }
  }
}
