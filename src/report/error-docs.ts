import { ERROR_CODES, type MigrationError } from '../errors.js';
import { escapeHtml } from './html.js';

// Every code an operator meets (annotation, summary) links to its entry in docs/errors.md,
// so the cause and the remedy are one click away.

/** The variables the link is built from; the runner sets them for a step that runs an action. */
export type DocsEnv = Partial<
  Record<'GITHUB_SERVER_URL' | 'GITHUB_ACTION_REPOSITORY' | 'GITHUB_ACTION_REF', string>
>;

/**
 * Codes whose heading in docs/errors.md ends in "(warning)": GitHub's anchor of
 * "### `MEMORY_LOW` (warning)" is `memory_low-warning`. A unit test keeps this
 * set equal to the headings.
 */
export const WARNING_HEADINGS: ReadonlySet<string> = new Set([
  'HOST_KEY_UNVERIFIED',
  'CPU_FEATURES_DIFFER',
  'DOCKER_UNTESTED',
  'FACT_UNREADABLE',
  'NETWORK_MODE_HOST',
  'EXEC_PROCESSES_LEFT',
  'SETTINGS_NOT_CARRIED',
  'MEMORY_LOW',
]);

/** The anchor GitHub gives the code's heading in docs/errors.md. */
export function errorAnchor(code: string): string {
  return `${code.toLowerCase()}${WARNING_HEADINGS.has(code) ? '-warning' : ''}`;
}

/**
 * Where the code is explained: docs/errors.md at the action's own ref when the
 * runner says which repository and ref the action came from (GITHUB_REPOSITORY
 * would be the calling workflow's repository, which has no such file), else a
 * path relative to the action's repository.
 */
export function errorDocUrl(code: string, env: DocsEnv): string {
  const anchor = `docs/errors.md#${errorAnchor(code)}`;
  const server = env.GITHUB_SERVER_URL?.replace(/\/+$/, '');
  const repository = env.GITHUB_ACTION_REPOSITORY;
  const ref = env.GITHUB_ACTION_REF;
  if (!server || !repository || !ref) return anchor;
  return `${server}/${repository}/blob/${encodeURIComponent(ref).replace(/%2F/g, '/')}/${anchor}`;
}

const DOCUMENTED: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether docs/errors.md has an entry for the code (UNEXPECTED, for one, has none). */
export function isDocumented(code: string | undefined): code is string {
  return code !== undefined && DOCUMENTED.has(code);
}

/** A message with a last line saying where its code is explained, when it has one. */
export function withErrorLink(message: string, code: string | undefined, env: DocsEnv): string {
  return isDocumented(code) ? `${message}\nAbout ${code}: ${errorDocUrl(code, env)}` : message;
}

/** The text of a failed step's error annotation: the error, then where its code is explained. */
export function failureAnnotation(error: Pick<MigrationError, 'code' | 'describe'>, env: DocsEnv): string {
  return withErrorLink(error.describe(), error.code, env);
}

/** The code as HTML for the job summary: a link to its entry, or the escaped code. */
export function codeLinkHtml(code: string, env: DocsEnv): string {
  if (!isDocumented(code)) return `<code>${escapeHtml(code)}</code>`;
  return `<a href="${escapeHtml(errorDocUrl(code, env))}"><code>${escapeHtml(code)}</code></a>`;
}
