import { describe, expect, it } from 'vitest';
import {
  type ArtifactDeps,
  type ArtifactOutcome,
  type ArtifactRequest,
  artifactNameProblem,
  GHES_REASON,
  NO_TOKEN_REASON,
  serverUrlProblem,
  uploadRunArtifact,
} from '../../src/report/artifact.js';

type UploadCall = [string, string[], string, { retentionDays?: number }];
type Upload = NonNullable<ArtifactDeps['upload']>;

const RUNNER_ENV = {
  ACTIONS_RUNTIME_TOKEN: 'header.payload.signature',
  ACTIONS_RESULTS_URL: 'https://results-receiver.actions.githubusercontent.com/',
  GITHUB_SERVER_URL: 'https://github.com',
};

const REQUEST: ArtifactRequest = {
  name: 'migration-web-1',
  files: ['/runner/work/_temp/criu/migration-metadata.json', '/runner/work/_temp/criu/summary.md'],
  rootDirectory: '/runner/work/_temp/criu',
};

const succeed: Upload = async () => ({ id: 42, size: 1234, digest: 'ab'.repeat(32) });

async function run(
  request: ArtifactRequest,
  env: NodeJS.ProcessEnv,
  upload: Upload,
): Promise<{ outcome: ArtifactOutcome; calls: UploadCall[] }> {
  const calls: UploadCall[] = [];
  const outcome = await uploadRunArtifact(request, {
    env,
    upload: (...args) => {
      calls.push(args);
      return upload(...args);
    },
  });
  return { outcome, calls };
}

interface Case {
  title: string;
  request?: Partial<ArtifactRequest>;
  env: NodeJS.ProcessEnv;
  upload?: Upload;
  outcome: ArtifactOutcome | { uploaded: false; reason: RegExp };
  called: boolean;
}

const CASES: Case[] = [
  {
    title: 'no ACTIONS_RUNTIME_TOKEN: skipped, library not called',
    env: { ...RUNNER_ENV, ACTIONS_RUNTIME_TOKEN: undefined },
    outcome: { uploaded: false, reason: NO_TOKEN_REASON },
    called: false,
  },
  {
    title: 'empty ACTIONS_RUNTIME_TOKEN counts as none',
    env: { ...RUNNER_ENV, ACTIONS_RUNTIME_TOKEN: '' },
    outcome: { uploaded: false, reason: NO_TOKEN_REASON },
    called: false,
  },
  {
    title: 'GitHub Enterprise Server: skipped, library not called',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: 'https://github.example.com' },
    outcome: { uploaded: false, reason: `${GHES_REASON} (GITHUB_SERVER_URL is https://github.example.com)` },
    called: false,
  },
  {
    title: 'plain localhost is Enterprise Server to the library too',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: 'http://localhost:3000' },
    outcome: { uploaded: false, reason: /^GitHub Enterprise Server does not support this artifact API/ },
    called: false,
  },
  {
    title: 'GITHUB_SERVER_URL that is not a URL',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: 'github.com' },
    outcome: { uploaded: false, reason: /^GITHUB_SERVER_URL is not a URL: "github\.com"$/ },
    called: false,
  },
  {
    title: 'no ACTIONS_RESULTS_URL: skipped, library not called',
    env: { ...RUNNER_ENV, ACTIONS_RESULTS_URL: undefined },
    outcome: { uploaded: false, reason: /^no ACTIONS_RESULTS_URL/ },
    called: false,
  },
  {
    title: 'github.com uploads',
    env: RUNNER_ENV,
    outcome: { uploaded: true, id: 42, size: 1234, digest: 'ab'.repeat(32) },
    called: true,
  },
  {
    title: 'unset GITHUB_SERVER_URL means github.com',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: undefined },
    outcome: { uploaded: true, id: 42, size: 1234, digest: 'ab'.repeat(32) },
    called: true,
  },
  {
    title: 'GHE.com data residency (*.ghe.com, any case) uploads',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: 'https://Octo-Corp.GHE.com' },
    outcome: { uploaded: true, id: 42, size: 1234, digest: 'ab'.repeat(32) },
    called: true,
  },
  {
    title: '*.localhost uploads',
    env: { ...RUNNER_ENV, GITHUB_SERVER_URL: 'http://github.localhost' },
    outcome: { uploaded: true, id: 42, size: 1234, digest: 'ab'.repeat(32) },
    called: true,
  },
  {
    title: 'bad name: says which character, library not called',
    request: { name: 'web:1' },
    env: RUNNER_ENV,
    outcome: { uploaded: false, reason: 'the artifact name "web:1" contains a colon :' },
    called: false,
  },
  {
    title: 'bad name is reported even off a runner',
    request: { name: 'a/b' },
    env: {},
    outcome: { uploaded: false, reason: 'the artifact name "a/b" contains a forward slash /' },
    called: false,
  },
  {
    title: 'empty name',
    request: { name: '' },
    env: RUNNER_ENV,
    outcome: { uploaded: false, reason: 'the artifact name is empty' },
    called: false,
  },
  {
    title: 'no files',
    request: { files: [] },
    env: RUNNER_ENV,
    outcome: { uploaded: false, reason: 'no files to upload' },
    called: false,
  },
  {
    title: 'retention days that are not a whole number',
    request: { retentionDays: 0.5 },
    env: RUNNER_ENV,
    outcome: { uploaded: false, reason: 'retention days must be a whole number of at least 1, not 0.5' },
    called: false,
  },
  {
    title: 'library error becomes a reason',
    env: RUNNER_ENV,
    upload: async () => {
      throw new Error(
        'Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict',
      );
    },
    outcome: {
      uploaded: false,
      reason:
        'upload failed: Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict',
    },
    called: true,
  },
  {
    title: 'a thrown non-Error becomes a reason too',
    env: RUNNER_ENV,
    upload: () => Promise.reject('socket hang up'),
    outcome: { uploaded: false, reason: 'upload failed: socket hang up' },
    called: true,
  },
  {
    title: 'an answer without an id is not an upload',
    env: RUNNER_ENV,
    upload: async () => ({ size: 10 }),
    outcome: { uploaded: false, reason: 'upload failed: the artifact service returned no artifact id' },
    called: true,
  },
  {
    title: 'missing size and digest: size 0, no digest key',
    env: RUNNER_ENV,
    upload: async () => ({ id: 7 }),
    outcome: { uploaded: true, id: 7, size: 0 },
    called: true,
  },
];

describe('uploadRunArtifact', () => {
  it.each(CASES)('$title', async ({ request, env, upload, outcome, called }) => {
    const result = await run({ ...REQUEST, ...request }, env, upload ?? succeed);
    if (!outcome.uploaded && outcome.reason instanceof RegExp) {
      expect(result.outcome.uploaded).toBe(false);
      expect(result.outcome.uploaded === false && result.outcome.reason).toMatch(outcome.reason);
    } else {
      expect(result.outcome).toStrictEqual(outcome);
    }
    expect(result.calls.length).toBe(called ? 1 : 0);
  });

  it('passes the request through to the library, with retention days only when set', async () => {
    const withRetention = await run({ ...REQUEST, retentionDays: 5 }, RUNNER_ENV, succeed);
    expect(withRetention.calls).toEqual([
      [REQUEST.name, REQUEST.files, REQUEST.rootDirectory, { retentionDays: 5 }],
    ]);
    const without = await run(REQUEST, RUNNER_ENV, succeed);
    expect(without.calls).toEqual([[REQUEST.name, REQUEST.files, REQUEST.rootDirectory, {}]]);
  });
});

describe('artifactNameProblem', () => {
  it.each([
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
  ])('names %j', (character, words) => {
    expect(artifactNameProblem(`run${character}1`)).toBe(
      `the artifact name ${JSON.stringify(`run${character}1`)} contains a ${words}`,
    );
  });

  it('accepts what the service accepts', () => {
    for (const name of ['migration-web-1', 'a b', 'ckpt.2026-03-04_05.06', 'émigré']) {
      expect(artifactNameProblem(name)).toBeUndefined();
    }
  });
});

describe('serverUrlProblem', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['https://github.com', false],
    ['https://GITHUB.COM/', false],
    ['https://acme.ghe.com', false],
    ['http://api.github.localhost:8080', false],
    ['https://www.github.com', true],
    ['https://ghe.com', true],
    ['https://git.acme.internal', true],
  ])('%j is Enterprise Server: %s', (url, ghes) => {
    const problem = serverUrlProblem(url);
    if (ghes) expect(problem).toMatch(/^GitHub Enterprise Server does not support/);
    else expect(problem).toBeUndefined();
  });
});
