import { CRIU_CONFIG_ANNOTATION } from '../engine/docker/create-args.js';
import { DOCKER_LAYOUT, DockerCli } from '../engine/docker/docker-cli.js';
import { RESTORE_MARKER_FILE } from '../engine/docker/staged-pages.js';
import { errorMessage } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import { unauthorizeScript } from '../policy/direct-route.js';
import { frozenCopyVerdict, planRecovery, type RecoveryPlan, type RecoveryStep } from '../policy/recovery.js';
import { isRestoreConfigPath } from './host-records.js';
import type { JournalRecord, RestoreCopiesKey, Side } from './journal.js';

export interface RecoveryHosts {
  source: Host;
  target: Host;
}

export interface RecoveryOutcome {
  direction: RecoveryPlan['direction'];
  done: string[];
  /** What could not be done, each with what the operator should do. */
  problems: string[];
  /** The source was deliberately left frozen because the target could not be confirmed gone. */
  sourceLeftFrozen: boolean;
  /** A running target was kept because the source could not be resumed in its place. */
  targetKept?: boolean;
  /** The source container was removed by someone: there was nothing to resume. */
  sourceGone?: boolean;
}

export interface RecoveryLog {
  info(message: string): void;
  warning(message: string): void;
}

const RETRIES = 3;

async function withRetries<T>(
  what: () => Promise<T>,
  delaysMs: readonly number[] = [500, 1500, 4000],
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < RETRIES; attempt++) {
    try {
      return await what();
    } catch (error) {
      lastError = error;
      if (attempt < RETRIES - 1)
        await new Promise((resolve) => setTimeout(resolve, delaysMs[attempt] ?? 1000));
    }
  }
  throw lastError;
}

/** containerd's unpacked copies of one checkpoint, recognised by the sha256 of CRIU's inventory image. */
export function restoreCopiesScript(key: RestoreCopiesKey, dir = '/tmp'): string {
  const tests: string[] = [];
  if (key.marker)
    tests.push(`[ "$(cat "$d/${RESTORE_MARKER_FILE}" 2>/dev/null)" = ${shellQuote([key.marker])} ]`);
  if (key.inventorySha256)
    tests.push(
      `{ [ -f "$d/inventory.img" ] && [ "$(sha256sum <"$d/inventory.img" | cut -d' ' -f1)" = ${shellQuote([key.inventorySha256])} ]; }`,
    );
  if (tests.length === 0) return 'true';
  return [
    `for d in ${shellQuote([dir])}/${DOCKER_LAYOUT.restoreUnpackGlob}; do`,
    `  { ${tests.join(' || ')}; } && rm -rf -- "$d" && echo "$d"`,
    'done; true',
  ].join('\n');
}

/**
 * Carries out the recovery plan of a journal: a rollback (newest effect
 * first, the source resumed only once the target is confirmed gone) or a
 * roll-forward (the source retired, never the target touched). Every step is
 * tried; failures are collected, never thrown.
 */
export async function recover(
  record: Pick<JournalRecord, 'entries' | 'sourceAfter' | 'retireSource'> & { mode?: JournalRecord['mode'] },
  hosts: RecoveryHosts,
  log: RecoveryLog,
): Promise<RecoveryOutcome> {
  const plan = planRecovery(record);
  const outcome: RecoveryOutcome = {
    direction: plan.direction,
    done: [],
    problems: [],
    sourceLeftFrozen: false,
  };
  let targetUnconfirmed = false;
  const docker = { source: new DockerCli(hosts.source), target: new DockerCli(hosts.target) };
  const hostOf = (side: Side): Host => hosts[side];
  const resumeStep = plan.steps.find((step) => step.kind === 'resume-source');

  for (const step of plan.steps) {
    try {
      const said = await runStep(step);
      if (said) {
        outcome.done.push(said);
        log.info(`${plan.direction}: ${said}`);
      }
    } catch (error) {
      const problem = `${describeStep(step)}: ${errorMessage(error)}`;
      outcome.problems.push(problem);
      log.warning(`${plan.direction}: ${problem}`);
      // A target kept on purpose is no reason to keep the source frozen: it cannot resume anyway.
      if (step.kind === 'remove-target-container' && step.critical && !outcome.targetKept)
        targetUnconfirmed = true;
    }
  }
  return outcome;

  /**
   * A running target may be the only copy of the service (its source killed after a commit
   * this journal never saw): it is removed only when the source can take over again.
   */
  async function sourceCanResume(ref: string): Promise<void> {
    if (resumeStep?.kind !== 'resume-source') return;
    const target = await docker.target.inspectContainer(ref, 'rollback');
    if (!target?.State.Running) return;
    const source = await docker.source.inspectContainer(resumeStep.containerId, 'rollback');
    if (source && (source.State.Paused || source.State.Running)) return;
    outcome.targetKept = true;
    throw new Error(
      `kept it: it runs, and the source container ${resumeStep.containerId.slice(0, 12)} ${source ? `is ${source.State.Status}` : 'is gone'}, so it cannot take over; the target may be the only copy of the service`,
    );
  }

  /** The ID docker create --cidfile wrote: empty when it made nothing, missing when it never ran. */
  async function createdId(cidFile: string | undefined): Promise<string | undefined> {
    if (!cidFile) return undefined;
    const read = await hosts.target.run(`cat -- ${shellQuote([cidFile])} 2>/dev/null; true`, {
      timeoutMs: 30_000,
    });
    const id = read.stdout.trim();
    return /^[0-9a-f]{64}$/.test(id) ? id : undefined;
  }

  async function runStep(step: RecoveryStep): Promise<string | undefined> {
    switch (step.kind) {
      case 'remove-target-container': {
        if (step.critical) await sourceCanResume(step.ref);
        const removed = await withRetries(() => docker.target.removeIfPresent(step.ref, 'rollback'));
        const left = await docker.target.inspectContainer(step.ref, 'rollback');
        if (left) throw new Error(`container ${step.ref.slice(0, 12)} is still on the target`);
        return removed ? `removed container ${step.ref.slice(0, 12)} from the target` : undefined;
      }
      case 'remove-created-container': {
        const id = await createdId(step.cidFile);
        if (!id) {
          // No ID: this run made nothing, or cannot tell. A container of that name may be someone else's.
          const there = await docker.target.inspectContainer(step.name, 'rollback');
          if (!there) return undefined;
          log.warning(
            `${plan.direction}: left container ${step.name} (${there.Id.slice(0, 12)}) on the target alone: nothing says this run made it`,
          );
          return `left container ${step.name} on the target alone (not made by this run)`;
        }
        const removed = await withRetries(() => docker.target.removeIfPresent(id, 'rollback'));
        if (await docker.target.inspectContainer(id, 'rollback'))
          throw new Error(`container ${id.slice(0, 12)} is still on the target`);
        return removed ? `removed container ${id.slice(0, 12)} from the target` : undefined;
      }
      case 'remove-image': {
        if ((await docker.target.imageId(step.imageId)) === undefined) return undefined;
        const users = await docker.target.containersUsingImage(step.imageId);
        if (users.length > 0) return `kept image ${step.imageId.slice(0, 19)}: other containers use it`;
        await docker.target.removeImage(step.imageId, 'rollback');
        return `removed image ${step.imageId.slice(0, 19)} this run copied to the target`;
      }
      case 'remove-files': {
        const host = hostOf(step.side);
        const result = await host.run(`rm -rf -- ${shellQuote(step.paths)}`, { timeoutMs: 120_000 });
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `rm exited ${result.exitCode}`);
        return undefined;
      }
      case 'remove-authorized-key': {
        const result = await hostOf(step.side).run(unauthorizeScript(step.file, step.tag), {
          timeoutMs: 60_000,
        });
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exited ${result.exitCode}`);
        return undefined;
      }
      case 'remove-restore-copies': {
        const result = await hosts.target.run(restoreCopiesScript(step, step.dir), {
          timeoutMs: 120_000,
        });
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exited ${result.exitCode}`);
        const removed = result.stdout.split('\n').filter(Boolean);
        return removed.length > 0 ? `removed containerd's restore copies ${removed.join(', ')}` : undefined;
      }
      case 'remove-volume': {
        const q = shellQuote([step.name]);
        const result = await hosts.target.run(
          `docker volume inspect ${q} >/dev/null 2>&1 || exit 3; docker volume rm ${q}`,
          { timeoutMs: 120_000 },
        );
        if (result.exitCode === 3) return undefined;
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exited ${result.exitCode}`);
        return `removed volume ${step.name} this run created on the target`;
      }
      case 'restore-volume': {
        const [mp, aside] = [shellQuote([step.mountpoint]), shellQuote([step.aside])];
        const result = await hosts.target.run(
          `[ -d ${aside} ] || exit 3; rm -rf -- ${mp} && mv -- ${aside} ${mp}`,
          { timeoutMs: 120_000 },
        );
        if (result.exitCode === 3) return undefined;
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exited ${result.exitCode}`);
        return `put back the old contents of volume ${step.name} on the target`;
      }
      case 'restore-namesake': {
        const aside = await docker.target.inspectContainer(step.containerId, 'rollback');
        if (!aside) throw new Error(`the replaced container ${step.containerId.slice(0, 12)} is gone`);
        if (aside.Name.replace(/^\//, '') === step.name) return undefined;
        // The restored container is removed first (newest first): the name is free again.
        await docker.target.rename(step.containerId, step.name, 'rollback');
        return `put back the stopped container ${step.name} (${step.containerId.slice(0, 12)}) on the target`;
      }
      case 'remove-namesake': {
        const removed = await withRetries(() => docker.target.removeIfPresent(step.containerId, 'finalize'));
        return removed
          ? `removed the replaced container ${step.name} (${step.containerId.slice(0, 12)}) from the target`
          : undefined;
      }
      case 'remove-source-volumes': {
        const result = await hosts.source.run(
          [
            'r=0',
            ...step.names.map((name) => {
              const q = shellQuote([name]);
              return `if docker volume inspect ${q} >/dev/null 2>&1; then docker volume rm ${q} || r=1; fi`;
            }),
            'exit "$r"',
          ].join('\n'),
          { timeoutMs: 120_000 },
        );
        if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exited ${result.exitCode}`);
        return `removed volumes ${step.names.join(', ')} from the source`;
      }
      case 'resume-source': {
        if (targetUnconfirmed) {
          outcome.sourceLeftFrozen = true;
          throw new Error(
            'left frozen on purpose: the target container could not be confirmed gone, and two running copies are worse than a pause',
          );
        }
        const state = await docker.source.inspectContainer(step.containerId, 'rollback');
        if (!state) {
          // Removed by someone since: nothing is left to resume, and nothing to wait for.
          outcome.sourceGone = true;
          log.warning(
            `${plan.direction}: the source container ${step.containerId.slice(0, 12)} is gone (removed since): nothing to resume`,
          );
          return 'the source container is gone: nothing to resume';
        }
        if (state.State.Paused) {
          await withRetries(() => docker.source.unpause(step.containerId, 'rollback'));
          return 'resumed the source container where it was frozen';
        }
        if (state.State.Running) return 'the source container is running (it was not frozen)';
        throw new Error(`the source container is ${state.State.Status}, not frozen`);
      }
      case 'retire-source': {
        const id = step.containerId;
        const before = await docker.source.inspectContainer(id, 'finalize');
        if (!before) return 'the source container is already gone';
        if (step.onlyFrozenSince !== undefined) {
          const left = await leftAsItIs(step.onlyFrozenSince, id, before.State);
          if (left) return left;
        }
        if ((before.HostConfig.RestartPolicy?.Name ?? 'no') !== 'no') {
          await withRetries(() => docker.source.setRestartPolicy(id, 'no', 'finalize'));
        }
        if (before.State.Running) {
          // A kill that worked but whose answer was lost fails when retried: the state below decides.
          await withRetries(() => docker.source.kill(id, 'finalize')).catch(() => {});
        }
        const after = await docker.source.inspectContainer(id, 'finalize');
        // Paused still counts as running: only a stopped container proves the source is dead.
        if (after?.State.Running) throw new Error('the source container is still running after SIGKILL');
        if (step.remove) {
          await withRetries(() => docker.source.remove(id, 'finalize', { force: true }));
          const holderSaid = step.holderId ? await retireHolder(step.holderId, true) : '';
          await removeRestoreConfig(before.HostConfig.Annotations?.[CRIU_CONFIG_ANNOTATION]);
          return `removed the source container${holderSaid}`;
        }
        const holderSaid = step.holderId ? await retireHolder(step.holderId, false) : '';
        return `source container stopped, restart policy "no" (was "${step.previousPolicy ?? before.HostConfig.RestartPolicy?.Name ?? 'no'}")${holderSaid}`;
      }
    }
  }

  /**
   * Checkpoint mode's roll-forward: a container that runs again (an operator resumed it), or
   * that cannot be proven still frozen by this run, is not stopped; what is said, if so.
   */
  async function leftAsItIs(
    since: string,
    id: string,
    state: { Running: boolean; Paused: boolean },
  ): Promise<string | undefined> {
    const events =
      since === '' || !state.Paused
        ? undefined
        : await docker.source.pauseEvents(id, since, 'finalize').catch((error: unknown) => {
            log.warning(`could not read Docker's events of ${id.slice(0, 12)}: ${errorMessage(error)}`);
            return undefined;
          });
    const verdict = frozenCopyVerdict({ running: state.Running, paused: state.Paused }, events);
    if (verdict === 'stop') return undefined;
    const said =
      verdict === 'running-again'
        ? `left the container running: it runs again since the checkpoint's freeze (someone resumed it), and a checkpoint run never stops a running container (stop it yourself if it should: docker stop ${id.slice(0, 12)})`
        : `left the container paused: nothing proves it is still the copy this run froze (${events === undefined ? "Docker's events since the freeze could not be read" : `events since the freeze: ${events.join(', ') || 'none'}`}); docker unpause ${id.slice(0, 12)} to resume it, or docker kill ${id.slice(0, 12)} if it should stop`;
    log.warning(said);
    return said;
  }

  /** The CRIU configuration an earlier restore gave the removed source (ours only), which nothing reads any more. */
  async function removeRestoreConfig(path: string | undefined): Promise<void> {
    if (!path || !isRestoreConfigPath(path)) return;
    const removed = await hosts.source.run(`rm -f ${shellQuote([path])}`, { timeoutMs: 30_000 });
    if (removed.exitCode !== 0)
      log.warning(`could not remove ${path} on the source: ${removed.stderr.trim()}`);
  }

  /** The source's network holder goes the way of its container: stopped for good, or removed. */
  async function retireHolder(holderId: string, remove: boolean): Promise<string> {
    const holder = await docker.source.inspectContainer(holderId, 'finalize');
    if (!holder) return '';
    if ((holder.HostConfig.RestartPolicy?.Name ?? 'no') !== 'no')
      await withRetries(() => docker.source.setRestartPolicy(holderId, 'no', 'finalize'));
    if (remove) {
      await withRetries(() => docker.source.removeIfPresent(holderId, 'finalize'));
      return ' and its network holder';
    }
    if (holder.State.Running)
      await withRetries(() => docker.source.kill(holderId, 'finalize')).catch(() => {});
    return '; its network holder stopped too';
  }

  function describeStep(step: RecoveryStep): string {
    switch (step.kind) {
      case 'remove-target-container':
        return `removing container ${step.ref.slice(0, 12)} from ${describeHost(hosts.target)} (do it by hand: docker rm -f ${step.ref.slice(0, 12)})`;
      case 'remove-created-container':
        return `removing the container this run created on ${describeHost(hosts.target)} (${step.cidFile ? `its ID is in ${step.cidFile}; ` : ''}check docker ps -a --filter name=${step.name} and remove it by hand only if it is a leftover of this run)`;
      case 'remove-image':
        return `removing image ${step.imageId.slice(0, 19)} from ${describeHost(hosts.target)}`;
      case 'remove-files':
        return `removing ${step.paths.join(', ')} on ${describeHost(hostOf(step.side))} (do it by hand: rm -rf ${step.paths.join(' ')})`;
      case 'remove-authorized-key':
        return `removing the run's key from ${step.file} on ${describeHost(hostOf(step.side))} (do it by hand: delete the line ending with ${step.tag})`;
      case 'remove-restore-copies':
        return `removing containerd's restore copies on ${describeHost(hosts.target)} (${step.dir ?? '/tmp'}/${DOCKER_LAYOUT.restoreUnpackGlob})`;
      case 'remove-volume':
        return `removing volume ${step.name} from ${describeHost(hosts.target)} (do it by hand: docker volume rm ${step.name})`;
      case 'restore-volume':
        return `putting back the old contents of volume ${step.name} on ${describeHost(hosts.target)} (do it by hand: rm -rf ${step.mountpoint} && mv ${step.aside} ${step.mountpoint})`;
      case 'restore-namesake':
        return `renaming the replaced container back on ${describeHost(hosts.target)} (do it by hand: docker rename ${step.containerId.slice(0, 12)} ${step.name})`;
      case 'remove-namesake':
        return `removing the replaced container on ${describeHost(hosts.target)} (do it by hand: docker rm ${step.containerId.slice(0, 12)})`;
      case 'remove-source-volumes':
        return `removing volumes from ${describeHost(hosts.source)} (do it by hand: docker volume rm ${step.names.join(' ')})`;
      case 'resume-source':
        return `resuming the source on ${describeHost(hosts.source)} (once the target has no copy: docker unpause ${step.containerId.slice(0, 12)})`;
      case 'retire-source':
        // Each process first: docker kill alone lets a paused container's other processes run on.
        return `stopping the source on ${describeHost(hosts.source)} (the target runs the service; do it by hand: docker update --restart no ${step.containerId.slice(0, 12)} && kill -KILL $(docker top ${step.containerId.slice(0, 12)} -o pid | tail -n +2) && docker kill ${step.containerId.slice(0, 12)}${step.remove ? ` && docker rm ${step.containerId.slice(0, 12)}` : ''})`;
    }
  }
}
