import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// scripts/release.mjs in a throwaway git repository: tag computation, the changelog section
// and the dist check, with tags created locally and nothing pushed or published. The build is
// a one-line stand-in (CHECK_DIST_BUILD) so the test does not bundle the action.

const SCRIPT = new URL('../../scripts/release.mjs', import.meta.url).pathname;
const repos: string[] = [];
afterAll(() => {
  for (const dir of repos) rmSync(dir, { recursive: true, force: true });
});

const IDENTITY = {
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@localhost',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@localhost',
};
// Writes dist/index.js as "built <version>", which is what a fresh build of this repo makes.
const BUILD = `node -e "const v=require('./package.json').version;require('fs').mkdirSync('dist',{recursive:true});require('fs').writeFileSync('dist/index.js','built '+v+'\\n')"`;

interface Repo {
  dir: string;
  git(...args: string[]): string;
  commit(files: Record<string, string>): void;
  release(...args: string[]): { status: number | null; out: string; outputs: string };
}

function repo(): Repo {
  const dir = mkdtempSync(join(tmpdir(), 'release-test-'));
  repos.push(dir);
  const env = { ...process.env, ...IDENTITY, GITHUB_ACTIONS: '', CHECK_DIST_BUILD: BUILD };
  const git = (...args: string[]): string => {
    const result = spawnSync('git', args, { cwd: dir, env, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  };
  git('init', '-q', '-b', 'main');
  return {
    dir,
    git,
    commit(files) {
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text);
      }
      git('add', '-A');
      git('commit', '-q', '-m', 'change');
    },
    release(...args) {
      const outputFile = join(dir, '..', `${dir.split('/').pop()}-output`);
      writeFileSync(outputFile, '');
      const result = spawnSync(process.execPath, [SCRIPT, ...args], {
        cwd: dir,
        env: { ...env, GITHUB_OUTPUT: outputFile },
        encoding: 'utf8',
      });
      return {
        status: result.status,
        out: `${result.stdout}${result.stderr}`,
        outputs: readFileSync(outputFile, 'utf8'),
      };
    },
  };
}

const CHANGELOG = (heading: string) =>
  `# Changelog\n\n## 1.3.0 (unreleased)\n\n- next\n\n## ${heading}\n\n- first line\n- second line\n\n## 1.1.0 - 2026-01-01\n\n- older\n`;

function released(version: string, heading = `${version} - 2026-12-06`): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'x', version }),
    'CHANGELOG.md': CHANGELOG(heading),
    'dist/index.js': `built ${version}\n`,
  };
}

describe('scripts/release.mjs', () => {
  it('tags the commit vX.Y.Z and moves vX, with the changelog section as notes', () => {
    const r = repo();
    r.commit(released('1.2.0'));
    const { status, out, outputs } = r.release('--notes', 'notes.md');
    expect(status, out).toBe(0);
    const head = r.git('rev-parse', 'HEAD');
    expect(r.git('rev-list', '-n1', 'v1.2.0')).toBe(head);
    expect(r.git('rev-list', '-n1', 'v1')).toBe(head);
    expect(r.git('cat-file', '-t', 'v1.2.0')).toBe('tag');
    const notes = readFileSync(join(r.dir, 'notes.md'), 'utf8');
    expect(notes).toBe('- first line\n- second line\n');
    expect(outputs).toContain('tag=v1.2.0\n');
    expect(outputs).toContain('major=v1\n');
    expect(outputs).toContain(`notes=${join(r.dir, 'notes.md')}\n`);
  });

  it('moves the major tag to the next release', () => {
    const r = repo();
    r.commit(released('1.2.0'));
    expect(r.release().status).toBe(0);
    const first = r.git('rev-parse', 'HEAD');
    r.commit(released('1.2.1', '[1.2.1] - 2026-12-07'));
    const { status, out } = r.release();
    expect(status, out).toBe(0);
    const second = r.git('rev-parse', 'HEAD');
    expect(r.git('rev-list', '-n1', 'v1')).toBe(second);
    expect(r.git('rev-list', '-n1', 'v1.2.0')).toBe(first);
  });

  it('leaves the major tag alone for a pre-release', () => {
    const r = repo();
    r.commit(released('1.2.0'));
    r.release();
    const stable = r.git('rev-parse', 'HEAD');
    r.commit(released('2.0.0-rc.1'));
    const { status, outputs } = r.release();
    expect(status).toBe(0);
    expect(outputs).toContain('major=\n');
    expect(r.git('tag', '-l', 'v2')).toBe('');
    expect(r.git('rev-list', '-n1', 'v1')).toBe(stable);
  });

  it.each([
    ['dist/ differs from its build', { 'dist/index.js': 'stale\n' }, /dist check failed/],
    ['the section still says unreleased', { 'CHANGELOG.md': CHANGELOG('1.2.0 (Unreleased)') }, /unreleased/],
    ['the changelog has no section', { 'CHANGELOG.md': '# Changelog\n' }, /no "## 1\.2\.0" section/],
    ['the version is not semantic', { 'package.json': '{"version":"1.2"}' }, /not X\.Y\.Z/],
  ])('refuses and tags nothing when %s', (_what, change, message) => {
    const r = repo();
    r.commit({ ...released('1.2.0'), ...change });
    const { status, out } = r.release();
    expect(status).toBe(1);
    expect(out).toMatch(message);
    expect(r.git('tag', '-l')).toBe('');
  });

  it('refuses a version that is tagged already, and uncommitted changes', () => {
    const r = repo();
    r.commit(released('1.2.0'));
    expect(r.release().status).toBe(0);
    expect(r.release().out).toMatch(/tag v1\.2\.0 exists already/);
    r.commit(released('1.2.1'));
    writeFileSync(join(r.dir, 'CHANGELOG.md'), CHANGELOG('1.2.1 - 2026-12-08 edited'));
    const dirty = r.release();
    expect(dirty.status).toBe(1);
    expect(dirty.out).toMatch(/uncommitted changes/);
  });

  it('with --no-tag checks everything and tags nothing', () => {
    const r = repo();
    r.commit(released('1.2.0'));
    const { status, out } = r.release('--no-tag');
    expect(status, out).toBe(0);
    expect(out).toMatch(/would tag/);
    expect(r.git('tag', '-l')).toBe('');
  });
});
