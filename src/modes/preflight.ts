import { dirname, join } from 'node:path';
import * as core from '@actions/core';
import { DockerCli } from '../engine/docker/docker-cli.js';
import { asMigrationError } from '../errors.js';
import type { Host } from '../host/host.js';
import { openHost } from '../host/host-factory.js';
import { formatHostSpec } from '../host/host-spec.js';
import { connectSsh, type SshConnectOptions } from '../host/ssh-host.js';
import type { Logger } from '../phases/context.js';
import { planRoute } from '../phases/direct-route.js';
import { lazyChecks } from '../phases/lazy-pages.js';
import { formatCheck, runGate } from '../phases/preflight.js';
import { type ConnectionFacts, connectionChecks } from '../policy/access-rules.js';
import type { Check } from '../policy/compatibility.js';
import { uploadRunArtifact } from '../report/artifact.js';
import {
  buildPreflightReport,
  failureMessage,
  groupByHost,
  type PreflightReport,
  verdictLine,
  writePreflightReport,
  writePreflightSummary,
} from '../report/preflight-report.js';
import { describeLocation, type HostLocation, type PreflightSettings } from '../settings.js';

const HOST_LABELS = { source: 'source', target: 'target', both: 'both hosts' } as const;

export function preflightReportPath(): string {
  const base = process.env.RUNNER_TEMP || process.cwd();
  return join(base, 'criu-migrate', 'preflight-report.json');
}

interface Opened {
  connection: ConnectionFacts;
  host?: Host;
}

/** Opens one host and records the facts of connecting, failure included. */
async function open(
  settings: PreflightSettings,
  role: 'source' | 'target',
  location: HostLocation,
): Promise<Opened> {
  let fingerprint: string | undefined;
  const connect = async (options: SshConnectOptions) => {
    const host = await connectSsh(options);
    fingerprint = host.hostKeyFingerprint;
    return host;
  };
  const connection: ConnectionFacts = {
    role,
    kind: location.kind,
    address: describeLocation(location),
    connected: false,
    hostKeyVerified: location.kind === 'ssh' && !settings.ssh.insecureSkipHostKeyCheck,
    sudo: settings.sudo,
  };
  if (location.kind === 'ssh' && settings.ssh.jumpHost)
    connection.jumpHost = formatHostSpec(settings.ssh.jumpHost);
  try {
    // The insecure-skip warning becomes a check of its own; no separate annotation.
    const host = await openHost(role, location, settings.ssh, settings.sudo, { connect });
    connection.connected = true;
    if (fingerprint) connection.hostKeyFingerprint = fingerprint;
    return { connection, host };
  } catch (error) {
    // With sudo refused, SSH itself worked: its key is still a fact worth reporting.
    if (fingerprint) connection.hostKeyFingerprint = fingerprint;
    const failure = asMigrationError(error, 'SSH_UNREACHABLE', { step: 'connect' });
    connection.error = { code: failure.code, message: failure.message };
    if (failure.remedy) connection.error.remedy = failure.remedy;
    return { connection };
  }
}

async function logReport(log: Logger, report: PreflightReport, checks: readonly Check[]): Promise<void> {
  for (const [host, list] of groupByHost(checks)) {
    const counts = { pass: 0, warn: 0, fail: 0 };
    for (const check of list) counts[check.status]++;
    const where = host === 'both' ? HOST_LABELS.both : `${HOST_LABELS[host]} ${report.hosts[host]}`;
    const title = `Preflight: ${where}: ${counts.fail} failed, ${counts.warn} warnings, ${counts.pass} passed`;
    await log.group(title, async () => {
      for (const check of list) {
        if (check.status === 'warn') log.warning(formatCheck(check));
        else log.info(formatCheck(check));
      }
    });
  }
}

/**
 * mode: preflight. Connects to both hosts, runs the gate migrate mode runs,
 * reports every check (log, summary, outputs, file) and fails the step when
 * a check fails (with strict, also on a warning). Changes nothing on either host.
 */
export async function runPreflightMode(settings: PreflightSettings, log: Logger): Promise<PreflightReport> {
  const startedAt = new Date().toISOString();
  const start = performance.now();
  if (!settings.target) throw new Error('preflight needs a target');
  const opened = await Promise.all([
    open(settings, 'source', settings.source),
    open(settings, 'target', settings.target),
  ]);
  const [source, target] = opened;
  try {
    const checks: Check[] = opened.flatMap(({ connection }) => connectionChecks(connection));
    if (source.host && target.host) {
      const gate = await runGate({
        settings,
        source: source.host,
        target: target.host,
        sourceDocker: new DockerCli(source.host),
        targetDocker: new DockerCli(target.host),
        log,
      });
      checks.push(...gate.checks);
      // The checks migrate's gate adds for post-copy, so a lazy move is refused here first.
      if (settings.memory === 'lazy')
        checks.push(
          ...(await lazyChecks(
            { source: source.host, target: target.host },
            { source: source.host.tunnels !== undefined, target: target.host.tunnels !== undefined },
            gate.facts,
          )),
        );
      checks.push(await routeCheck(settings, source.host, log));
    } else {
      log.warning('preflight: a host could not be reached, so only the connection checks ran');
    }
    const durationMs = performance.now() - start;
    const report = buildPreflightReport({
      checks,
      strict: settings.strict,
      container: settings.container,
      source: source.connection.address,
      target: target.connection.address,
      kernelPolicy: settings.kernelPolicy,
      startedAt,
      durationMs,
    });
    await logReport(log, report, checks);
    const path = preflightReportPath();
    await writePreflightReport(path, report);
    core.setOutput('status', report.result === 'passed' ? 'succeeded' : 'refused');
    core.setOutput('report', JSON.stringify(report));
    core.setOutput('report-path', path);
    // The report is this mode's record of the run: where every mode names its metadata.
    core.setOutput('metadata-path', path);
    core.setOutput('error-code', report.result === 'passed' ? '' : (report.blockingCodes[0] ?? ''));
    core.setOutput('duration-ms', report.durationMs);
    core.setOutput('artifact-id', await uploadReport(settings, path, log));
    if (process.env.GITHUB_STEP_SUMMARY) await writePreflightSummary(core.summary, report, process.env);
    if (report.result === 'passed') log.info(verdictLine(report));
    else core.setFailed(failureMessage(report, process.env));
    log.info(`preflight report: ${path}`);
    return report;
  } finally {
    await Promise.allSettled(opened.flatMap(({ host }) => (host ? [host.close()] : [])));
  }
}

/**
 * Whether the source reaches the target's SSH server itself (asked from the source, read-only):
 * with route auto a relay is a fine answer, with route direct it fails like migrate mode would.
 */
async function routeCheck(settings: PreflightSettings, source: Host, log: Logger): Promise<Check> {
  const expected =
    settings.route === 'direct'
      ? "the source reaches the target's SSH server (route: direct)"
      : `streams host to host when the source reaches the target's SSH server, else through the runner (route: ${settings.route})`;
  try {
    const plan = await planRoute(source, settings, log);
    return {
      host: 'both',
      name: 'direct route',
      status: 'pass',
      observed:
        plan.choice.route === 'direct'
          ? "the source reaches the target's SSH server: streams go host to host"
          : `streams go through the runner: ${plan.choice.reason}`,
      expected,
    };
  } catch (error) {
    const failure = asMigrationError(error, 'DIRECT_ROUTE_UNAVAILABLE');
    return {
      host: 'both',
      name: 'direct route',
      status: 'fail',
      observed: failure.message,
      expected,
      code: failure.code,
      ...(failure.remedy ? { remedy: failure.remedy } : {}),
    };
  }
}

/** The report as the run's artifact; the artifact ID, or '' when it was not uploaded. */
export async function uploadReport(settings: PreflightSettings, path: string, log: Logger): Promise<string> {
  if (!settings.uploadArtifact) return '';
  const outcome = await uploadRunArtifact(
    {
      name: settings.artifactName,
      files: [path],
      rootDirectory: dirname(path),
      ...(settings.artifactRetentionDays ? { retentionDays: settings.artifactRetentionDays } : {}),
    },
    { env: process.env },
  );
  if (outcome.uploaded) {
    log.info(`uploaded artifact ${settings.artifactName} (id ${outcome.id})`);
    return String(outcome.id);
  }
  if (outcome.reason.startsWith('no ACTIONS_RUNTIME_TOKEN'))
    log.info(`artifact upload skipped: ${outcome.reason}`);
  else log.warning(`artifact upload skipped: ${outcome.reason}`);
  return '';
}
