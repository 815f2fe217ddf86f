// The action runs dist/ as committed: this builds it again (npm run build, or the command in
// CHECK_DIST_BUILD) and fails when the result differs from the commit, new files included.
// CI runs it right after npm ci in a fresh checkout; scripts/release.mjs runs it before tagging.
import { spawnSync } from 'node:child_process';

const build = process.env.CHECK_DIST_BUILD || 'npm run build';
const onGitHub = process.env.GITHUB_ACTIONS === 'true';

const built = spawnSync(build, { shell: true, stdio: 'inherit' });
if (built.status !== 0) {
  console.error(`check-dist: "${build}" failed (exit ${built.status ?? built.signal})`);
  process.exit(1);
}

// git diff misses files the build added, so ask for untracked ones too.
const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all', '--', 'dist/'], {
  encoding: 'utf8',
});
if (status.status !== 0) {
  console.error(`check-dist: git status failed: ${status.stderr}`);
  process.exit(1);
}
if (status.stdout.trim() !== '') {
  process.stdout.write(status.stdout);
  const message =
    'dist/ is not what npm ci && npm run build make from this commit: run them and commit dist/';
  console.error(onGitHub ? `::error title=dist/ differs::${message}` : `check-dist: ${message}`);
  process.exit(1);
}
console.log('check-dist: dist/ is the build of this commit');
