import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ERROR_CODES } from '../../src/errors.js';

// The operators' guide must keep up with the code: the error catalogue with the codes the
// source can emit, the README's tables with action.yml, its workflow excerpts with
// examples/workflows, and hosts.md's sudoers rule with the file the test bed installs.

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const SRC = new URL('src/', ROOT).pathname;
const sources = sourceFiles(SRC).map((path) => ({
  path: path.slice(SRC.length),
  text: readFileSync(path, 'utf8'),
}));

/** Codes of ERROR_CODES that some source file besides errors.ts names, plus `code: 'X'` literals outside it (UNEXPECTED). */
function emittedCodes(): { emitted: Set<string>; reserved: string[] } {
  const declared = new Set<string>(ERROR_CODES);
  const others = sources.filter((file) => file.path !== 'errors.ts');
  const used = new Set<string>();
  for (const { text } of others) {
    for (const match of text.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) {
      if (declared.has(match[1] ?? '')) used.add(match[1] ?? '');
    }
    for (const match of text.matchAll(/code: '([A-Z][A-Z0-9_]+)'/g)) used.add(match[1] ?? '');
  }
  return { emitted: used, reserved: ERROR_CODES.filter((code) => !used.has(code)) };
}

interface CatalogueEntry {
  code: string;
  body: string;
}

function catalogue(): { entries: CatalogueEntry[]; reserved: string[] } {
  const text = read('docs/errors.md');
  const [main = '', reservedPart = ''] = text.split(/^## Reserved$/m);
  const entries = main
    .split(/^### /m)
    .slice(1)
    .map((section) => {
      const code =
        /^`([A-Z][A-Z0-9_]+)`/.exec(section)?.[1] ?? `(unreadable heading: ${section.split('\n')[0]})`;
      return { code, body: section.slice(section.indexOf('\n') + 1) };
    });
  const reserved = [...reservedPart.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? '');
  return { entries, reserved };
}

const TEMPLATE = (code: string): string =>
  `### \`${code}\`\n- **Cause**: ...\n- **Observed / expected**: ...\n- **Remedy**: ...`;

describe('docs/errors.md', () => {
  const { emitted, reserved } = emittedCodes();
  const { entries, reserved: listedReserved } = catalogue();
  const documented = new Set(entries.map((entry) => entry.code));

  it('explains every code the source can emit', () => {
    const missing = [...emitted].filter((code) => !documented.has(code)).sort();
    expect(
      missing,
      `docs/errors.md does not explain ${missing.join(', ')}. Add a section for each under the fitting "##" area:\n\n${missing.map(TEMPLATE).join('\n\n')}\n`,
    ).toEqual([]);
  });

  it('lists no code the source never emits', () => {
    const stale = [...documented].filter((code) => !emitted.has(code)).sort();
    expect(
      stale,
      `docs/errors.md explains ${stale.join(', ')}, which no file under src/ emits: remove the section (a code still declared in ERROR_CODES goes under "## Reserved")`,
    ).toEqual([]);
  });

  it('gives each code once, with its cause, what was observed against what was expected, and the remedy', () => {
    const seen = entries.map((entry) => entry.code);
    expect(
      seen.filter((code, i) => seen.indexOf(code) !== i),
      'codes explained twice',
    ).toEqual([]);
    for (const { code, body } of entries) {
      for (const label of ['Cause', 'Observed / expected', 'Remedy']) {
        expect(body, `${code} has no "- **${label}**: <text>" line`).toMatch(
          new RegExp(`^- \\*\\*${label.replace('/', '\\/')}\\*\\*: \\S`, 'm'),
        );
      }
    }
  });

  it('names the declared codes no code path emits as reserved, and only those', () => {
    expect(
      [...listedReserved].sort(),
      `the "## Reserved" list of docs/errors.md must be exactly: ${reserved.join(', ') || '(none)'}`,
    ).toEqual([...reserved].sort());
  });
});

// --- README and action.yml -----------------------------------------------------------------------

interface ActionYml {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, unknown>;
}

const action = parse(read('action.yml')) as ActionYml;
const readme = read('README.md');

/** The rows of the first table after a heading: first cell's backticked names, and the other cells. */
function tableAfter(heading: string): { names: string[]; cells: string[] }[] {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "${heading}" heading`);
  const lines = readme.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: { names: string[]; cells: string[] }[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
    const names = [...(cells[0] ?? '').matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1] ?? '');
    rows.push({ names, cells: cells.slice(1) });
  }
  return rows;
}

describe('README inputs and outputs', () => {
  const inputRows = tableAfter('### Inputs');
  const outputRows = tableAfter('### Outputs');
  const readmeInputs = new Map(
    inputRows.flatMap((row) => row.names.map((name) => [name, row.cells[0] ?? ''])),
  );
  const readmeOutputs = new Set(outputRows.flatMap((row) => row.names));

  it('lists every input of action.yml and no other', () => {
    const declared = Object.keys(action.inputs);
    expect(
      declared.filter((name) => !readmeInputs.has(name)),
      'inputs missing from the README table',
    ).toEqual([]);
    expect(
      [...readmeInputs.keys()].filter((name) => !declared.includes(name)),
      'README inputs not in action.yml',
    ).toEqual([]);
  });

  it("gives action.yml's default of each input, and none where action.yml has none", () => {
    for (const [name, spec] of Object.entries(action.inputs)) {
      const cell = readmeInputs.get(name) ?? '';
      if (spec.default !== undefined) {
        expect(cell, `README default of ${name}`).toBe(`\`${spec.default}\``);
      } else {
        // Empty, "(required)" or a default the action works out, in parentheses.
        expect(cell, `README default of ${name}: action.yml has none`).toMatch(/^$|^\(.*\)$/);
      }
    }
  });

  it('lists every output of action.yml and no other', () => {
    const declared = Object.keys(action.outputs);
    expect(
      declared.filter((name) => !readmeOutputs.has(name)),
      'outputs missing from the README table',
    ).toEqual([]);
    expect(
      [...readmeOutputs].filter((name) => !declared.includes(name)),
      'README outputs not in action.yml',
    ).toEqual([]);
  });

  it('quotes each example workflow step as it is in examples/workflows', () => {
    const section = readme.slice(readme.indexOf('### Example workflows'), readme.indexOf('### Inputs'));
    const quoted = [
      ...section.matchAll(
        /\(\[`([a-z-]+\.yml)`\]\(examples\/workflows\/\1\)[^\n]*\n\n```yaml\n([\s\S]*?)```/g,
      ),
    ];
    expect(quoted.map((m) => m[1]).sort()).toEqual([
      'checkpoint.yml',
      'cutover-gate.yml',
      'migrate.yml',
      'restore.yml',
    ]);
    for (const [, file = '', block = ''] of quoted) {
      expect(read(`examples/workflows/${file}`), `README's excerpt of ${file}`).toContain(block);
    }
  });
});

describe('docs/hosts.md', () => {
  it('gives the sudoers rule exactly as the test bed installs it', () => {
    const rule = read('examples/sudoers/criu-migrate');
    expect(read('docs/hosts.md')).toContain(`\`\`\`\n${rule}\`\`\``);
  });
});
