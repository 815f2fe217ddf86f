// The steps of a release that need no credentials, so they can be run (and tested) anywhere:
//   1. the version tag (vX.Y.Z) and the moving major tag (vX) from package.json;
//   2. the CHANGELOG.md section of that version, which becomes the release notes;
//   3. a clean tree and the dist check (scripts/check-dist.mjs);
//   4. both tags created locally. Pushing them and creating the release is left to the caller
//      (.github/workflows/release.yml).
//
//   node scripts/release.mjs [--notes <file>] [--no-tag]
// Writes tag, major and notes to GITHUB_OUTPUT when that is set.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const notesPath = resolve(option('--notes') ?? 'build/release-notes.md');
const createTags = !args.includes('--no-tag');

function fail(message) {
  const onGitHub = process.env.GITHUB_ACTIONS === 'true';
  console.error(onGitHub ? `::error title=release::${message}` : `release: ${message}`);
  process.exit(1);
}

function git(...gitArgs) {
  const result = spawnSync('git', gitArgs, { encoding: 'utf8' });
  return { ok: result.status === 0, out: result.stdout.trim(), err: result.stderr.trim() };
}

// 1. Tags.
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$/.exec(version ?? '');
if (!semver) fail(`package.json version "${version}" is not X.Y.Z or X.Y.Z-pre`);
const tag = `v${version}`;
// A pre-release never moves the major tag users pin.
const major = semver[4] === undefined ? `v${semver[1]}` : '';
if (git('rev-parse', '-q', '--verify', `refs/tags/${tag}`).ok) {
  fail(`tag ${tag} exists already: raise the version in package.json (and CHANGELOG.md)`);
}

// 2. Release notes: the "## <version>" section, up to the next "## " heading.
const changelog = readFileSync('CHANGELOG.md', 'utf8').replace(/\r\n?/g, '\n').split('\n');
const escaped = version.replace(/[.+]/g, '\\$&');
const headingAt = changelog.findIndex((line) => new RegExp(`^## \\[?v?${escaped}\\]?(\\s|$)`).test(line));
if (headingAt < 0) fail(`CHANGELOG.md has no "## ${version}" section`);
if (/unreleased/i.test(changelog[headingAt])) {
  fail(`CHANGELOG.md's section for ${version} still says unreleased: give it the release date`);
}
const next = changelog.findIndex((line, i) => i > headingAt && /^## /.test(line));
const notes = changelog
  .slice(headingAt + 1, next < 0 ? undefined : next)
  .join('\n')
  .trim();
if (notes === '') fail(`CHANGELOG.md's section for ${version} is empty`);

// 3. The tree as committed, and dist/ its build.
const dirty = git('status', '--porcelain', '--untracked-files=no');
if (!dirty.ok) fail(`git status failed: ${dirty.err}`);
if (dirty.out !== '') fail(`uncommitted changes:\n${dirty.out}`);
const checkDist = resolve(dirname(fileURLToPath(import.meta.url)), 'check-dist.mjs');
const checked = spawnSync(process.execPath, [checkDist], { stdio: 'inherit' });
if (checked.status !== 0) fail('the dist check failed; nothing was tagged');

// 4. Tags, local only.
const head = git('rev-parse', 'HEAD').out;
if (createTags) {
  const made = git('tag', '-a', tag, '-m', `${tag}\n\n${notes}`, head);
  if (!made.ok) fail(`git tag ${tag}: ${made.err}`);
  if (major) {
    const moved = git('tag', '-f', major, head);
    if (!moved.ok) fail(`git tag -f ${major}: ${moved.err}`);
  }
}

mkdirSync(dirname(notesPath), { recursive: true });
writeFileSync(notesPath, `${notes}\n`);
if (process.env.GITHUB_OUTPUT) {
  appendFileSync(process.env.GITHUB_OUTPUT, `tag=${tag}\nmajor=${major}\nnotes=${notesPath}\n`);
}
const what = createTags ? 'tagged' : 'would tag';
console.log(
  `release: ${what} ${head.slice(0, 12)} as ${tag}${major ? ` and moved ${major}` : ''}; notes in ${notesPath}`,
);
