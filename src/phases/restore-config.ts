import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import {
  containerCgroupPath,
  lastingConfigLines,
  needsRestoreConfig,
  planRestoreConfig,
  type RestoreConfigPlan,
  type RestoreHostFacts,
  restoreConfigLines,
  safeCgroupPath,
} from '../policy/criu-config.js';
import { PRIVATE, restoreConfigPath } from '../state/host-records.js';
import type { Named, RunContext } from './context.js';

/** The restore's CRIU configuration file on the target, from before `docker create` on. */
export interface RestoreConfigFile {
  path: string;
  plan: RestoreConfigPlan;
  driver: string;
  lines: string[];
}

/**
 * Before `docker create`: when the target needs it, an empty file whose path
 * the container's annotation will name (journalled: a rollback removes it).
 * Undefined when runc on the target needs no help.
 */
export async function prepareRestoreConfig(
  ctx: RunContext<Named>,
  target: RestoreHostFacts,
  /** memory: lazy: the lazy-pages daemon's directory on the target; tcpEstablished: the dump kept connections inside. */
  options: { lazyWorkDir?: string; tcpEstablished?: boolean } = {},
): Promise<RestoreConfigFile | undefined> {
  const plan = planRestoreConfig(target, options);
  if (!needsRestoreConfig(plan)) return undefined;
  const path = restoreConfigPath(ctx.settings);
  await ctx.journal.intend({ kind: 'restore-config', path }, 'target');
  await runChecked(
    ctx.target,
    `${PRIVATE} mkdir -p ${shellQuote([dirOf(path)])} && : >${shellQuote([path])}`,
    {
      step: 'stage',
      what: "writing the restore's CRIU configuration file",
    },
  );
  ctx.log.info(`restore configuration ${path}: ${plan.reason}`);
  return { path, plan, driver: target.cgroupDriver ?? 'cgroupfs', lines: [] };
}

/** After `docker create`: the lines for the container that now has an ID. */
export async function writeRestoreConfig(
  ctx: RunContext<Named>,
  file: RestoreConfigFile,
  containerId: string,
  cgroupParent: string | undefined,
): Promise<void> {
  const cgroup = containerCgroupPath(file.driver, containerId, cgroupParent);
  // Only a path that goes into the file must pass; a tcp-established-only file names no cgroup.
  if (file.plan.cgroupRoot && !safeCgroupPath(cgroup)) {
    throw new MigrationError(
      'INPUT_INVALID',
      `the container's cgroup path ${JSON.stringify(cgroup)} is not one the action passes to CRIU`,
      {
        step: 'stage',
        host: describeHost(ctx.target),
        remedy: "give the container a plain cgroup parent (letters, digits, '-', '_', '.') or none",
      },
    );
  }
  file.lines = restoreConfigLines(file.plan, cgroup);
  await writeLines(ctx, file.path, file.lines);
}

/**
 * Once the restored container is verified: the file keeps only what stays true
 * of the container (runc reads it again for its next checkpoint: one still saying
 * lazy-pages would make that checkpoint wait for a lazy-pages daemon for ever).
 * A failure here costs nothing yet, so it only warns.
 */
export async function settleRestoreConfig(
  ctx: RunContext<Named>,
  file: RestoreConfigFile | undefined,
): Promise<void> {
  if (!file) return;
  const lasting = lastingConfigLines(file.lines);
  if (lasting.length === file.lines.length) return;
  try {
    await writeLines(ctx, file.path, lasting);
  } catch (error) {
    ctx.log.warning(`could not trim the restore configuration ${file.path}: ${String(error)}`);
  }
}

async function writeLines(ctx: RunContext<Named>, path: string, lines: readonly string[]): Promise<void> {
  await runChecked(
    ctx.target,
    `${PRIVATE} cat >${shellQuote([`${path}.new`])} && mv -f ${shellQuote([`${path}.new`, path])}`,
    {
      step: 'stage',
      what: "writing the restore's CRIU configuration file",
      options: { input: lines.map((line) => `${line}\n`).join('') },
    },
  );
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}
