import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as core from '@actions/core';
import { mkdirP } from '@actions/io';
import { DockerCli } from '../engine/docker/docker-cli.js';
import { asMigrationError, errorMessage, type MigrationError } from '../errors.js';
import type { Host } from '../host/host.js';
import { requireRoot } from '../host/host-factory.js';
import { streamBetween } from '../host/relay.js';
import { connectHosts } from '../phases/connect.js';
import type { Logger } from '../phases/context.js';
import { formatCheck, gatherSharedHostFacts, runGate } from '../phases/preflight.js';
import { gateComposeUnit, type UnitGate } from '../phases/unit-gate.js';
import type { Check } from '../policy/compatibility.js';
import { restoreOrder } from '../policy/compose-unit.js';
import {
  containerNameOf,
  describeSelection,
  resolveUnits,
  type Selection,
  type Unit,
} from '../policy/selection.js';
import {
  buildSelectionReport,
  type SelectionReport,
  type StreamSpeed,
  selectionMatrix,
  selectionVerdict,
  type UnitInput,
  writeSelectionSummary,
} from '../report/selection-report.js';
import type { PreflightSettings } from '../settings.js';
import { uploadReport } from './preflight.js';

/** Random, so compression cannot flatter the measured speed. */
const SPEED_SAMPLE_BYTES = 64 * 1024 * 1024;

/** The runner's own container, when the runner runs on the source in a container (Docker sets its hostname to the short ID). */
function ownContainerId(settings: PreflightSettings, env: NodeJS.ProcessEnv): string | undefined {
  const hostname = env.HOSTNAME ?? '';
  return settings.source.kind === 'local' && /^[0-9a-f]{12}$/.test(hostname) ? hostname : undefined;
}

/** One stream of random data from the source to the target, through the same relay a migration uses. */
async function measureSpeed(source: Host, target: Host, log: Logger): Promise<StreamSpeed | undefined> {
  try {
    const result = await streamBetween(
      source,
      `head -c ${SPEED_SAMPLE_BYTES} /dev/urandom`,
      target,
      'cat >/dev/null',
      {
        label: 'stream speed sample',
        step: 'preflight',
        log,
      },
    );
    return { bytes: result.bytes, ms: result.ms };
  } catch (error) {
    log.warning(`could not measure the stream speed between the hosts: ${errorMessage(error)}; no estimates`);
    return undefined;
  }
}

/** A unit the gate could not even read (a dependency cycle in its labels): blocked, with why. */
function unitFailure(unit: Unit, error: MigrationError): Check {
  return {
    host: 'source',
    name: 'compose unit',
    status: 'fail',
    observed: `${unit.name}: ${error.message}`,
    expected: 'a unit the gate can read',
    ...(error.remedy ? { remedy: error.remedy } : {}),
    code: error.code,
  };
}

/**
 * Preflight over a selection: the hosts once, then every unit of the selection through the
 * same gate a migration runs, a measured stream speed for the estimates, one report, and a
 * matrix of the units that may move. Changes nothing on either host.
 */
export async function runSelectionPreflight(
  settings: PreflightSettings & { selection: Selection },
  log: Logger,
  env: NodeJS.ProcessEnv,
): Promise<SelectionReport> {
  const startedAt = new Date();
  const start = performance.now();
  const hosts = await connectHosts(settings, log);
  try {
    await requireRoot(hosts.source, settings.source, settings.sudo);
    await requireRoot(hosts.target, settings.target, settings.sudo);
    const sourceDocker = new DockerCli(hosts.source);
    const targetDocker = new DockerCli(hosts.target);
    const ownId = ownContainerId(settings, env);
    const resolved = resolveUnits(await sourceDocker.listContainers('preflight'), settings.selection, {
      ...(ownId ? { ownContainerId: ownId } : {}),
    });
    log.info(
      `selection ${describeSelection(settings.selection)}: ${resolved.units.length} units (${resolved.units.map((unit) => unit.name).join(', ') || 'none'}), ${resolved.leftOut.length} left out`,
    );
    for (const left of resolved.leftOut) log.info(`left out: ${left.container}: ${left.reason}`);
    const shared = gatherSharedHostFacts(hosts);
    const speed = await log.group('Stream speed between the hosts', () =>
      measureSpeed(hosts.source, hosts.target, log),
    );
    const units: UnitInput[] = [];
    const gateCtx = { settings, ...hosts, sourceDocker, targetDocker, log };
    for (const unit of resolved.units) {
      const input = await log.group(`Unit ${unit.name}`, async (): Promise<UnitInput> => {
        const base = { name: unit.name, kind: unit.kind, containers: unit.members.map(containerNameOf) };
        if (unit.kind === 'compose') {
          // The same gate migrate mode runs for unit: compose:<project>.
          let gate: UnitGate;
          try {
            restoreOrder(unit.members);
            gate = await gateComposeUnit(gateCtx, unit, shared);
          } catch (error) {
            const failure = asMigrationError(error, 'PREFLIGHT_FAILED');
            return { ...base, checks: [unitFailure(unit, failure)] };
          }
          for (const check of gate.checks) if (check.status !== 'pass') log.info(formatCheck(check));
          return {
            ...base,
            checks: gate.checks,
            ...(gate.memoryBytes !== undefined && gate.layerBytes !== undefined
              ? { memoryBytes: gate.memoryBytes, layerBytes: gate.layerBytes }
              : {}),
          };
        }
        const checks: Check[] = [];
        let memoryBytes = 0;
        let layerBytes = 0;
        let sized = true;
        for (const member of unit.members) {
          const gate = await runGate({ ...gateCtx, settings: { ...settings, container: member.Id } }, shared);
          for (const check of gate.checks) {
            checks.push(check);
            if (check.status !== 'pass') log.info(formatCheck(check));
          }
          const memory = gate.facts.sourceProbe?.memory?.bytes;
          const layer = gate.facts.sourceProbe?.writableLayerBytes;
          if (memory === undefined || layer === undefined) sized = false;
          memoryBytes += memory ?? 0;
          layerBytes += layer ?? 0;
        }
        return { ...base, checks, ...(sized ? { memoryBytes, layerBytes } : {}) };
      });
      units.push(input);
    }
    const report = buildSelectionReport({
      selection: describeSelection(settings.selection),
      strict: settings.strict,
      source: hosts.source.address,
      target: hosts.target.address,
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - start,
      ...(speed ? { speed } : {}),
      units,
      leftOut: resolved.leftOut,
      missing: resolved.missing,
    });
    const path = join(env.RUNNER_TEMP || process.cwd(), 'criu-migrate', 'selection-report.json');
    await mkdirP(dirname(path));
    await writeFile(path, `${JSON.stringify(report, null, 2)}\n`, 'utf8');
    const outputs: Record<string, string | number> = {
      status: report.result === 'passed' ? 'succeeded' : 'refused',
      report: JSON.stringify(report),
      'report-path': path,
      'metadata-path': path,
      matrix: JSON.stringify(selectionMatrix(report)),
      'error-code':
        report.result === 'passed'
          ? ''
          : (report.blockingCodes[0] ??
            (report.missing.length > 0 ? 'CONTAINER_NOT_FOUND' : 'PREFLIGHT_FAILED')),
      'duration-ms': report.durationMs,
      'artifact-id': await uploadReport(settings, path, log),
    };
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
    if (env.GITHUB_STEP_SUMMARY) await writeSelectionSummary(core.summary, report, env);
    if (report.result === 'passed') log.info(selectionVerdict(report));
    else core.setFailed(`${outputs['error-code']}: ${selectionVerdict(report)}`);
    log.info(`selection report: ${path}`);
    return report;
  } finally {
    await Promise.allSettled([hosts.source.close(), hosts.target.close()]);
  }
}
