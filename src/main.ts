import * as core from '@actions/core';
import { MigrationError, errorMessage } from './errors.js';
import { getInputs } from './inputs.js';

/** Wires inputs, hosts and the chosen mode. Kept free of logic of its own. */
export async function run(): Promise<void> {
  try {
    const settings = getInputs((name) => core.getInput(name));
    throw new MigrationError('MODE_NOT_IMPLEMENTED', `mode ${settings.mode} is not implemented yet`);
  } catch (error) {
    if (error instanceof MigrationError) core.setFailed(error.describe());
    else core.setFailed(errorMessage(error));
  }
}
