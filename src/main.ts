import * as core from '@actions/core';
import { errorMessage, MigrationError } from './errors.js';
import { getInputs, secretsToMask } from './inputs.js';
import { runCheckpointMode } from './modes/checkpoint.js';
import { runDrillMode } from './modes/drill.js';
import { runListMode } from './modes/list.js';
import { runMigrateMode } from './modes/migrate/mode.js';
import { runUnitMigrateMode } from './modes/migrate/unit.js';
import { runPreflightMode } from './modes/preflight.js';
import { runSelectionPreflight } from './modes/preflight-selection.js';
import { runRestoreMode } from './modes/restore.js';
import { earlyRun } from './modes/run-control.js';
import { runUnitCheckpointMode } from './modes/unit-checkpoint.js';
import { runUnitRestoreMode } from './modes/unit-restore.js';
import { runPost } from './post.js';
import { metadataError } from './report/metadata.js';
import { publishEarlyFailure } from './report/publish.js';
import { actionsRuntime, SAVED } from './runtime.js';
import type { Settings } from './settings.js';
import { savePostPlan } from './state/post-state.js';

/** Wiring only: the post step, or inputs then the chosen mode. */
export async function run(): Promise<void> {
  const runtime = actionsRuntime();
  if (runtime.getState(SAVED.isPost) === 'true') {
    await runPost(runtime).catch((error: unknown) => core.warning(`post: ${errorMessage(error)}`));
    return;
  }
  // First: after any failure below, the post step must know it is the post step.
  runtime.saveState(SAVED.isPost, 'true');
  const startedAt = new Date();
  let settings: Settings | undefined;
  try {
    settings = getInputs((name) => core.getInput(name));
    for (const secret of secretsToMask(settings)) core.setSecret(secret);
    savePostPlan(settings, runtime);
    switch (settings.mode) {
      case 'migrate':
        if (settings.compose) await runUnitMigrateMode({ ...settings, compose: settings.compose }, runtime);
        else await runMigrateMode(settings, runtime);
        return;
      case 'preflight':
        if (settings.selection)
          await runSelectionPreflight(
            { ...settings, selection: settings.selection },
            runtime.log,
            process.env,
          );
        else await runPreflightMode(settings, runtime.log);
        return;
      case 'checkpoint':
        if (settings.compose)
          await runUnitCheckpointMode({ ...settings, compose: settings.compose }, runtime);
        else await runCheckpointMode(settings, runtime);
        return;
      case 'restore':
        if (settings.compose) await runUnitRestoreMode({ ...settings, compose: settings.compose }, runtime);
        else await runRestoreMode(settings, runtime);
        return;
      case 'drill':
        await runDrillMode(settings, runtime);
        return;
      case 'list':
        await runListMode(settings, runtime);
        return;
    }
  } catch (error) {
    // Inputs and connections fail before any mode reports: every output is still set.
    const failure = metadataError(error);
    await publishEarlyFailure({
      error: failure,
      message: error instanceof MigrationError ? error.describe() : errorMessage(error),
      run: earlyRun(settings, failure, core.getInput('mode')),
      checkpointName: settings?.checkpointName ?? `failed-${startedAt.getTime()}`,
      startedAt,
      env: process.env,
    });
  }
}
