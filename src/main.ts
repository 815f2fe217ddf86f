import * as core from '@actions/core';
import { errorMessage, MigrationError } from './errors.js';
import { getInputs, secretsToMask } from './inputs.js';
import { runMigrateMode } from './modes/migrate.js';
import { runPreflightMode } from './modes/preflight.js';
import type { Logger } from './phases/context.js';

const log: Logger = {
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  group: (name, fn) => core.group(name, fn),
};

/** Wiring only: inputs, then the chosen mode. */
export async function run(): Promise<void> {
  try {
    const settings = getInputs((name) => core.getInput(name));
    for (const secret of secretsToMask(settings)) core.setSecret(secret);
    switch (settings.mode) {
      case 'migrate':
        await runMigrateMode(settings, log);
        return;
      case 'preflight':
        await runPreflightMode(settings, log);
        return;
      default:
        throw new MigrationError('MODE_NOT_IMPLEMENTED', `mode "${settings.mode}" is not available yet`, {
          step: 'inputs',
          remedy: 'use mode: migrate or mode: preflight',
        });
    }
  } catch (error) {
    core.setFailed(error instanceof MigrationError ? error.describe() : errorMessage(error));
  }
}
