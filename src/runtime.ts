import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';
import type { MigrationError } from './errors.js';
import type { Logger } from './phases/context.js';
import { failureAnnotation } from './report/error-docs.js';

/**
 * The runner as the modes see it: logging, outputs, saved state for the post
 * step, and cancellation. Passed in, so tests and the post step need no
 * module mocking.
 */
export interface Runtime {
  log: Logger;
  saveState(name: string, value: string): void;
  getState(name: string): string;
  /** Calls `cancel` on SIGINT or SIGTERM (the runner's cancellation); returns a function that stops listening. */
  onCancel(cancel: (signal: string) => void): () => void;
  env: NodeJS.ProcessEnv;
  newToken(): string;
  /** Marks the step failed with the error's annotation (which links its code to docs/errors.md). */
  fail(error: MigrationError): void;
}

export { SAVED } from './state/post-state.js';

export function actionsRuntime(): Runtime {
  return {
    log: {
      info: (message) => core.info(message),
      warning: (message) => core.warning(message),
      group: (name, fn) => core.group(name, fn),
    },
    saveState: (name, value) => core.saveState(name, value),
    getState: (name) => core.getState(name),
    onCancel(cancel) {
      const handler = (signal: NodeJS.Signals): void => cancel(signal);
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
    env: process.env,
    newToken: () => randomBytes(12).toString('hex'),
    fail: (error) => core.setFailed(failureAnnotation(error, process.env)),
  };
}
