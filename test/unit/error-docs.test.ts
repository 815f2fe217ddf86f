import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, MigrationError } from '../../src/errors.js';
import {
  codeLinkHtml,
  errorAnchor,
  errorDocUrl,
  failureAnnotation,
  WARNING_HEADINGS,
  withErrorLink,
} from '../../src/report/error-docs.js';

// Annotations and summaries link each code to docs/errors.md: the anchors must be the ones
// GitHub gives the headings there, or every link lands at the top of the page.

const errorsMd = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const headings = errorsMd
  .split('\n')
  .filter((line) => line.startsWith('### `'))
  .map((line) => line.slice(4));

/** GitHub's heading anchor: lower case, punctuation other than - and _ dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const ACTION_ENV = {
  GITHUB_SERVER_URL: 'https://github.example.com',
  GITHUB_ACTION_REPOSITORY: 'acme/criu-container-migrate',
  GITHUB_ACTION_REF: 'v0',
};

describe('errorAnchor', () => {
  it("is GitHub's anchor of every code's heading in docs/errors.md", () => {
    expect(headings.length).toBeGreaterThan(0);
    for (const heading of headings) {
      const code = /^`([A-Z0-9_]+)`/.exec(heading)?.[1] ?? '';
      expect(errorAnchor(code), heading).toBe(githubSlug(heading));
    }
  });

  it('knows exactly the headings marked (warning)', () => {
    const marked = headings
      .filter((heading) => /\(warning\)\s*$/.test(heading))
      .map((heading) => /^`([A-Z0-9_]+)`/.exec(heading)?.[1] ?? '');
    expect([...WARNING_HEADINGS].sort()).toEqual(marked.sort());
  });

  it('gives a plain heading the lower-case code, a warning heading its suffix', () => {
    expect(errorAnchor('RESTORE_FAILED')).toBe('restore_failed');
    expect(errorAnchor('MEMORY_LOW')).toBe('memory_low-warning');
  });
});

describe('errorDocUrl', () => {
  it("points at docs/errors.md at the action's own repository and ref", () => {
    expect(errorDocUrl('CRIU_TOO_OLD', ACTION_ENV)).toBe(
      'https://github.example.com/acme/criu-container-migrate/blob/v0/docs/errors.md#criu_too_old',
    );
    expect(
      errorDocUrl('CRIU_TOO_OLD', { ...ACTION_ENV, GITHUB_SERVER_URL: 'https://github.example.com/' }),
    ).toBe('https://github.example.com/acme/criu-container-migrate/blob/v0/docs/errors.md#criu_too_old');
  });

  it('keeps a ref with slashes as a path and escapes the rest', () => {
    expect(errorDocUrl('TIMEOUT', { ...ACTION_ENV, GITHUB_ACTION_REF: 'release/v0 rc' })).toBe(
      'https://github.example.com/acme/criu-container-migrate/blob/release/v0%20rc/docs/errors.md#timeout',
    );
  });

  it('is the relative anchor when the runner does not say where the action came from', () => {
    expect(errorDocUrl('SSH_UNREACHABLE', {})).toBe('docs/errors.md#ssh_unreachable');
    // uses: ./ leaves GITHUB_ACTION_REPOSITORY empty; the workflow's repository is not the action's.
    expect(errorDocUrl('SSH_UNREACHABLE', { ...ACTION_ENV, GITHUB_ACTION_REPOSITORY: '' })).toBe(
      'docs/errors.md#ssh_unreachable',
    );
    expect(errorDocUrl('SSH_UNREACHABLE', { ...ACTION_ENV, GITHUB_ACTION_REF: undefined })).toBe(
      'docs/errors.md#ssh_unreachable',
    );
  });

  it('has an entry in docs/errors.md for every code it links, reserved ones aside', () => {
    const anchors = new Set(headings.map(githubSlug));
    const reserved = errorsMd.split(/^## Reserved$/m)[1] ?? '';
    for (const code of ERROR_CODES) {
      if (reserved.includes(`\`${code}\``)) continue;
      expect(anchors.has(errorAnchor(code)), code).toBe(true);
    }
  });
});

describe('annotations', () => {
  it("end with the link to the code's entry", () => {
    const error = new MigrationError('RESTORE_FAILED', 'criu restore failed', {
      step: 'restore',
      remedy: 'read the CRIU log lines',
    });
    expect(failureAnnotation(error, ACTION_ENV).split('\n')).toEqual([
      'RESTORE_FAILED: criu restore failed (step restore)',
      'What to do: read the CRIU log lines',
      'About RESTORE_FAILED: https://github.example.com/acme/criu-container-migrate/blob/v0/docs/errors.md#restore_failed',
    ]);
  });

  it('add no link for a code docs/errors.md does not have', () => {
    expect(withErrorLink('UNEXPECTED: boom', 'UNEXPECTED', ACTION_ENV)).toBe('UNEXPECTED: boom');
    expect(withErrorLink('boom', undefined, ACTION_ENV)).toBe('boom');
    expect(withErrorLink('INPUT_INVALID: bad', 'INPUT_INVALID', {})).toBe(
      'INPUT_INVALID: bad\nAbout INPUT_INVALID: docs/errors.md#input_invalid',
    );
  });
});

describe('codeLinkHtml', () => {
  it('links a documented code and escapes the address', () => {
    expect(codeLinkHtml('NOT_ROOT', { ...ACTION_ENV, GITHUB_ACTION_REF: "v0'x" })).toBe(
      '<a href="https://github.example.com/acme/criu-container-migrate/blob/v0&#39;x/docs/errors.md#not_root"><code>NOT_ROOT</code></a>',
    );
    expect(codeLinkHtml('UNEXPECTED', ACTION_ENV)).toBe('<code>UNEXPECTED</code>');
  });
});
