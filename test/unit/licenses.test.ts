import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// scripts/licenses.mjs on a small made-up project: the entries come from the lockfile and
// the bundle's module list alone, whatever order the stats list the modules in.

const SCRIPT = new URL('../../scripts/licenses.mjs', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function project(): string {
  const root = mkdtempSync(join(tmpdir(), 'licenses-test-'));
  dirs.push(root);
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  put(
    'package-lock.json',
    JSON.stringify({
      lockfileVersion: 3,
      packages: {
        '': { name: 'p' },
        'node_modules/zeta': { version: '1.0.0', license: 'MIT' },
        'node_modules/isarray': { version: '2.0.5', license: 'MIT' },
        'node_modules/lazy/node_modules/isarray': { version: '1.0.0', license: 'MIT' },
        'node_modules/lazy': { version: '1.0.0', license: 'MIT' },
        'node_modules/@s/a': { version: '3.0.0', license: 'ISC' },
        'node_modules/other/node_modules/zeta': { version: '1.0.0', license: 'MIT' },
        'node_modules/unused': { version: '9.9.9', license: 'MIT' },
      },
    }),
  );
  put('node_modules/zeta/LICENSE', 'zeta text, the copy at the later path\n');
  put('node_modules/other/node_modules/zeta/LICENSE.md', 'zeta text\r\nline two\r\n');
  put('node_modules/isarray/LICENSE', 'isarray 2 text\n');
  put(
    'node_modules/lazy/node_modules/isarray/README.md',
    '# isarray\n\n## License\n\nisarray 1 text\n\n## Other\nno\n',
  );
  put('node_modules/lazy/LICENSE', 'lazy text\n');
  put('node_modules/@s/a/COPYING', 'scoped text\n');
  put('node_modules/unused/LICENSE', 'unused text\n');
  return root;
}

const MODULES = [
  { name: './src/index.ts + 3 modules', modules: [{ name: './node_modules/zeta/index.js' }] },
  { name: './node_modules/lazy/node_modules/isarray/index.js' },
  { name: './node_modules/isarray/index.js' },
  { name: './node_modules/lazy/lib/x.js' },
  { name: './node_modules/@s/a/dist/a.js' },
  { name: './node_modules/other/node_modules/zeta/index.js' },
  { name: 'external "node:fs"' },
];

function run(root: string, modules: unknown[]): { status: number | null; out: string; stderr: string } {
  writeFileSync(join(root, 'stats.json'), JSON.stringify({ modules }));
  const result = spawnSync(process.execPath, [SCRIPT, 'stats.json', 'licenses.txt', '.'], {
    cwd: root,
    encoding: 'utf8',
  });
  const out = result.status === 0 ? readFileSync(join(root, 'licenses.txt'), 'utf8') : '';
  return { status: result.status, out, stderr: result.stderr };
}

describe('scripts/licenses.mjs', () => {
  it('writes one entry per bundled name@version, sorted, with its license text', () => {
    const { status, out, stderr } = run(project(), MODULES);
    expect(status, stderr).toBe(0);
    const heads = [...out.matchAll(/^(\S+@\d\S*)\nLicense: (.+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(heads).toEqual([
      '@s/a@3.0.0 ISC',
      'isarray@1.0.0 MIT',
      'isarray@2.0.5 MIT',
      'lazy@1.0.0 MIT',
      'zeta@1.0.0 MIT',
    ]);
    expect(out).toContain('isarray 1 text');
    expect(out).not.toContain('## Other');
    // Two paths, one name@version: the first path in sorted order gives the text.
    expect(out).toContain('zeta text\nline two\n');
    expect(out).not.toContain('later path');
    expect(out).not.toContain('\r');
    expect(out).not.toContain('unused');
  });

  it('gives the same file whatever order the modules come in', () => {
    const root = project();
    const first = run(root, MODULES).out;
    expect(run(root, [...MODULES].reverse()).out).toBe(first);
  });

  it('fails when a bundled package is not in the lockfile', () => {
    const { status, stderr } = run(project(), [{ name: './node_modules/ghost/index.js' }]);
    expect(status).toBe(1);
    expect(stderr).toContain('node_modules/ghost');
  });
});
