import { errorMessage } from '../errors.js';

/** What to upload: `files` are absolute paths under `rootDirectory`, which becomes the zip's root. */
export interface ArtifactRequest {
  name: string;
  files: string[];
  rootDirectory: string;
  /** Days until the artifact expires; the repository's own maximum still applies. */
  retentionDays?: number;
}

export type ArtifactOutcome =
  | { uploaded: true; id: number; size: number; digest?: string }
  | { uploaded: false; reason: string };

export interface ArtifactDeps {
  /** Read for the checks made before calling the library (the library itself reads process.env). */
  env: NodeJS.ProcessEnv;
  /** Defaults to DefaultArtifactClient.uploadArtifact from @actions/artifact. */
  upload?: (
    name: string,
    files: string[],
    root: string,
    options: { retentionDays?: number },
  ) => Promise<{ id?: number; size?: number; digest?: string }>;
}

export const NO_TOKEN_REASON =
  'no ACTIONS_RUNTIME_TOKEN (not running on a GitHub runner, or the job has no artifact permission)';

export const GHES_REASON =
  'GitHub Enterprise Server does not support this artifact API (@actions/artifact v2+); ' +
  'the metadata stays on the runner';

/** The characters @actions/artifact refuses in an artifact name, with the words it uses for them. */
const FORBIDDEN_NAME_CHARACTERS: ReadonlyArray<readonly [string, string]> = [
  ['"', 'double quote "'],
  [':', 'colon :'],
  ['<', 'less than <'],
  ['>', 'greater than >'],
  ['|', 'vertical bar |'],
  ['*', 'asterisk *'],
  ['?', 'question mark ?'],
  ['\r', 'carriage return \\r'],
  ['\n', 'line feed \\n'],
  ['\\', 'backslash \\'],
  ['/', 'forward slash /'],
];

/** Why the artifact service would refuse this name, or undefined when it would accept it. */
export function artifactNameProblem(name: string): string | undefined {
  if (name === '') return 'the artifact name is empty';
  for (const [character, words] of FORBIDDEN_NAME_CHARACTERS) {
    if (name.includes(character)) return `the artifact name ${JSON.stringify(name)} contains a ${words}`;
  }
  return undefined;
}

/**
 * The library's own test (isGhes in @actions/artifact): an unset or empty
 * GITHUB_SERVER_URL means github.com; github.com, *.ghe.com and *.localhost are
 * GitHub's cloud; any other host is GitHub Enterprise Server.
 */
export function serverUrlProblem(serverUrl: string | undefined): string | undefined {
  if (!serverUrl) return undefined;
  let hostname: string;
  try {
    hostname = new URL(serverUrl).hostname.trimEnd().toLowerCase();
  } catch {
    return `GITHUB_SERVER_URL is not a URL: ${JSON.stringify(serverUrl)}`;
  }
  if (hostname === 'github.com' || hostname.endsWith('.ghe.com') || hostname.endsWith('.localhost')) {
    return undefined;
  }
  return `${GHES_REASON} (GITHUB_SERVER_URL is ${serverUrl})`;
}

async function defaultUpload(
  name: string,
  files: string[],
  root: string,
  options: { retentionDays?: number },
): Promise<{ id?: number; size?: number; digest?: string }> {
  // Loaded on first use: the library and the Azure SDK behind it cost start-up
  // time on every run, and most code paths never upload.
  const { DefaultArtifactClient } = await import('@actions/artifact');
  return new DefaultArtifactClient().uploadArtifact(name, files, root, options);
}

/**
 * Uploads the run's files as one zipped workflow artifact. Never throws: every
 * problem comes back as { uploaded: false, reason } for the caller to report as a
 * warning, since an artifact problem must not fail a migration.
 */
export async function uploadRunArtifact(
  request: ArtifactRequest,
  deps: ArtifactDeps,
): Promise<ArtifactOutcome> {
  const nameProblem = artifactNameProblem(request.name);
  if (nameProblem) return { uploaded: false, reason: nameProblem };
  if (request.files.length === 0) return { uploaded: false, reason: 'no files to upload' };
  const { retentionDays } = request;
  if (retentionDays !== undefined && !(Number.isInteger(retentionDays) && retentionDays >= 1)) {
    return {
      uploaded: false,
      reason: `retention days must be a whole number of at least 1, not ${retentionDays}`,
    };
  }

  // Checked here so that the library is not called when it can only fail. For
  // Enterprise Server it would also print its own warning annotation before
  // throwing GHESNotSupportedError, on top of the caller's warning.
  if (!deps.env.ACTIONS_RUNTIME_TOKEN) return { uploaded: false, reason: NO_TOKEN_REASON };
  const serverProblem = serverUrlProblem(deps.env.GITHUB_SERVER_URL);
  if (serverProblem) return { uploaded: false, reason: serverProblem };
  if (!deps.env.ACTIONS_RESULTS_URL) {
    return {
      uploaded: false,
      reason: 'no ACTIONS_RESULTS_URL (the runner did not say where the artifact service is)',
    };
  }

  const upload = deps.upload ?? defaultUpload;
  const options = retentionDays === undefined ? {} : { retentionDays };
  let response: { id?: number; size?: number; digest?: string };
  try {
    response = await upload(request.name, request.files, request.rootDirectory, options);
  } catch (error) {
    return { uploaded: false, reason: `upload failed: ${errorMessage(error)}` };
  }
  if (response.id === undefined) {
    return { uploaded: false, reason: 'upload failed: the artifact service returned no artifact id' };
  }
  const outcome: ArtifactOutcome = { uploaded: true, id: response.id, size: response.size ?? 0 };
  if (response.digest) outcome.digest = response.digest;
  return outcome;
}
