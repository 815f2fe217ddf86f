import * as core from '@actions/core';
import { errorMessage, MigrationError } from './errors.js';
import { getInputs, secretsToMask } from './inputs.js';
import { runCheckpointMode } from './modes/checkpoint.js';
import { runDrillMode } from './modes/drill.js';
import { runListMode } from './modes/list.js';
import { runMigrateMode } from './modes/migrate/mode.js';
import { runPreflightMode } from './modes/preflight.js';
import { runRestoreMode } from './modes/restore.js';
import { earlyRun } from './modes/run-control.js';
import { runPost } from './post.js';
import { withErrorLink } from './report/error-docs.js';
import { metadataError } from './report/metadata.js';
import { writeFailureSummary } from './report/summary.js';
import { actionsRuntime, SAVED } from './runtime.js';
import type { Settings } from './settings.js';

/** Wiring only: inputs, then the chosen mode (or the post step). */
export async function run(): Promise<void> {
  const runtime = actionsRuntime();
  const isPost = runtime.getState(SAVED.isPost) === 'true';
  let settings: Settings | undefined;
  try {
    settings = getInputs((name) => core.getInput(name));
    for (const secret of secretsToMask(settings)) core.setSecret(secret);
    if (isPost) {
      await runPost(settings, runtime);
      return;
    }
    runtime.saveState(SAVED.isPost, 'true');
    switch (settings.mode) {
      case 'migrate':
        await runMigrateMode(settings, runtime);
        return;
      case 'preflight':
        await runPreflightMode(settings, runtime.log);
        return;
      case 'checkpoint':
        await runCheckpointMode(settings, runtime);
        return;
      case 'restore':
        await runRestoreMode(settings, runtime);
        return;
      case 'drill':
        await runDrillMode(settings, runtime);
        return;
      case 'list':
        await runListMode(settings, runtime);
        return;
    }
  } catch (error) {
    const message = error instanceof MigrationError ? error.describe() : errorMessage(error);
    if (isPost) {
      core.warning(`post: ${message}`);
      return;
    }
    // Inputs and connections fail before any mode reports: the code still reaches the output.
    const failure = metadataError(error);
    core.setOutput('error-code', failure.code);
    core.setFailed(withErrorLink(message, failure.code, process.env));
    if (process.env.GITHUB_STEP_SUMMARY) {
      await writeFailureSummary(
        core.summary,
        failure,
        earlyRun(settings, failure, core.getInput('mode')),
        process.env,
      ).catch(() => {});
    }
  }
}
