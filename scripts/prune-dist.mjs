// Runs after ncc. ncc copies ssh2's optional native addons (and a Windows
// helper) next to the bundle; we install with ignore-scripts, so they would be
// stale binaries for another Node ABI, and ssh2 works without them.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const unwanted = /\.(node|exe)$/i;

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

let files;
try {
  files = walk(dist);
} catch (error) {
  console.error(`prune-dist: cannot read ${dist}: ${error.message}. Run ncc first (npm run build).`);
  process.exit(1);
}

const removed = files.filter((path) => unwanted.test(path)).sort();
for (const path of removed) {
  const size = statSync(path).size;
  rmSync(path);
  console.log(`prune-dist: removed ${relative(root, path)} (${size} bytes)`);
}
if (removed.length === 0) console.log('prune-dist: no native addons or executables in dist/');
