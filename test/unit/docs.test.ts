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
/** Where README's internals went: the phases and the journal, the benchmark, the test beds. */
const MOVED_DOCS = ['docs/internals.md', 'docs/benchmark.md', 'docs/testbed.md'];

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

// --- What the docs say a code is, against what the rules make of it --------------------------

/** For each code a rule under src/policy gives a check: the statuses ('warn', 'fail') it can have. */
function ruleStatuses(): Map<string, Set<string>> {
  const statuses = new Map<string, Set<string>>();
  for (const { path, text } of sources.filter((file) => file.path.startsWith('policy/'))) {
    for (const match of text.matchAll(/code: '([A-Z][A-Z0-9_]+)'/g)) {
      // The nearest status before the code belongs to the same check object.
      const at = text.lastIndexOf('status:', match.index);
      if (at < 0) throw new Error(`${path}: no status before code ${match[1]}`);
      const expression = text.slice(at, text.indexOf(',\n', at));
      const found = statuses.get(match[1] ?? '') ?? new Set<string>();
      for (const literal of expression.matchAll(/'(warn|fail)'/g)) found.add(literal[1] ?? '');
      statuses.set(match[1] ?? '', found);
    }
  }
  return statuses;
}

describe('warnings and failures', () => {
  const statuses = ruleStatuses();
  const { entries } = catalogue();
  const headings = read('docs/errors.md')
    .split('\n')
    .filter((line) => line.startsWith('### `'));
  const markedWarning = new Set(
    headings.flatMap((line) =>
      /\(warning\)\s*$/.test(line) ? [/`([A-Z0-9_]+)`/.exec(line)?.[1] ?? ''] : [],
    ),
  );

  it('finds the checks of the rules', () => {
    expect(statuses.get('TCP_CONNECTIONS_OPEN')).toEqual(new Set(['fail']));
    expect(statuses.get('MEMORY_LOW')).toEqual(new Set(['warn']));
  });

  it('marks a code "(warning)" in docs/errors.md exactly when the rules can only warn with it, or can warn', () => {
    for (const code of markedWarning) {
      expect(statuses.get(code)?.has('warn'), `${code} is marked (warning) but no rule warns with it`).toBe(
        true,
      );
    }
    for (const [code, found] of statuses) {
      if (found.size === 1 && found.has('warn')) {
        expect(markedWarning.has(code), `${code} only ever warns: mark its heading "(warning)"`).toBe(true);
      }
      if (found.size === 1 && found.has('fail')) {
        expect(markedWarning.has(code), `${code} always fails: its heading must not say "(warning)"`).toBe(
          false,
        );
      }
    }
    expect(entries.length).toBeGreaterThan(0);
  });

  const texts = [
    { file: 'README.md', text: readme },
    { file: 'docs/hosts.md', text: read('docs/hosts.md') },
    // Internals moved out of README: what they say about codes is held to the rules all the same.
    ...MOVED_DOCS.map((file) => ({ file, text: read(file) })),
    ...readdirSync(new URL('examples/workflows/', ROOT)).map((name) => ({
      file: `examples/workflows/${name}`,
      text: read(`examples/workflows/${name}`),
    })),
  ];

  it('calls a code a warning only where the rules warn with it, and a failure only where they fail', () => {
    for (const { file, text } of texts) {
      const warned = [
        ...text.matchAll(/`([A-Z][A-Z0-9_]+)`(?: warns|, a warning)/g),
        ...text.matchAll(/the warning `([A-Z][A-Z0-9_]+)`/g),
      ];
      for (const [, code = ''] of warned) {
        expect(
          statuses.get(code)?.has('warn'),
          `${file} calls ${code} a warning; the rules never warn with it`,
        ).toBe(true);
      }
      const failed = [
        ...text.matchAll(/`([A-Z][A-Z0-9_]+)`, a failure/g),
        ...text.matchAll(/fails with `([A-Z][A-Z0-9_]+)`/g),
      ];
      for (const [, code = ''] of failed) {
        expect(
          statuses.get(code)?.has('fail'),
          `${file} calls ${code} a failure; the rules never fail with it`,
        ).toBe(true);
      }
    }
  });

  it('never calls open TCP connections a warning (the gate refuses them)', () => {
    expect(statuses.get('TCP_CONNECTIONS_OPEN')?.has('warn')).toBe(false);
    for (const { file, text } of texts) {
      for (const line of text.split('\n')) {
        if (/TCP connection/i.test(line) && /warn/i.test(line) && !/`[A-Z_]+` warns/.test(line)) {
          throw new Error(`${file} calls TCP connections a warning: "${line.trim()}"`);
        }
      }
    }
  });
});

describe('docs/errors.md covers ERROR_CODES', () => {
  it('has an entry, or a Reserved mention, for every declared code', () => {
    const { entries, reserved } = catalogue();
    const covered = new Set([...entries.map((entry) => entry.code), ...reserved]);
    expect(ERROR_CODES.filter((code) => !covered.has(code))).toEqual([]);
  });

  it('calls Docker 27 unverified wherever it names it', () => {
    for (const { code, body } of catalogue().entries) {
      if (/\b27\.x\b|26\/27|Docker 27\b/.test(body)) {
        expect(body, `${code} names Docker 27; nothing verifies it`).toMatch(/unverified/);
      }
    }
  });
});

// --- action.yml descriptions against src/inputs.ts -------------------------------------------

interface InputSpec {
  description?: string;
  default?: string;
}
const inputSpecs = action.inputs as Record<string, InputSpec>;
const inputsSource = sources.find((file) => file.path === 'inputs.ts')?.text ?? '';

describe('action.yml descriptions', () => {
  it('names every mode that requires target', () => {
    const condition = /if \(\s*target === undefined &&\s*\(([^)]*)\)\s*\)/.exec(inputsSource)?.[1] ?? '';
    const modes = [...condition.matchAll(/mode === '(\w+)'/g)].map((m) => m[1] ?? '');
    expect(modes.length, 'src/inputs.ts: the target requirement was not found').toBeGreaterThan(0);
    for (const mode of modes) expect(inputSpecs.target?.description).toContain(mode);
  });

  it('says known-hosts covers every host the action contacts', () => {
    for (const host of ['source', 'target', 'store host', 'jump host']) {
      expect(inputSpecs['known-hosts']?.description).toContain(host);
    }
  });

  it('gives the unit of every number input src/inputs.ts reads with one', () => {
    const units = [
      ...inputsSource.matchAll(/parsePositiveInteger\(\s*'([a-z-]+)',[^;]*?'(seconds|minutes|days)'/g),
    ].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
    expect(units.map(([name]) => name)).toEqual(
      expect.arrayContaining(['timeout', 'verify-timeout', 'verify-stable-seconds']),
    );
    for (const [name, unit] of units) {
      expect(inputSpecs[name]?.description?.toLowerCase(), `${name} is in ${unit}`).toContain(unit);
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`)) ?? '';
      expect(row.toLowerCase(), `README's row of ${name} gives no unit`).toMatch(
        new RegExp(unit === 'days' ? 'days' : unit),
      );
    }
  });

  it('says what checkpoint-name: latest means in restore mode', () => {
    expect(inputsSource).toMatch(/const LATEST = 'latest'/);
    expect(inputSpecs['checkpoint-name']?.description).toMatch(/latest/);
    const row = readme.split('\n').find((line) => line.startsWith('| `checkpoint-name` |')) ?? '';
    expect(row).toMatch(/`latest`/);
  });
});

// --- README against the examples, package.json and docs ---------------------------------------

describe('README', () => {
  const examples = readdirSync(new URL('examples/workflows/', ROOT))
    .map((name) => read(`examples/workflows/${name}`))
    .join('\n');

  it('uses the secrets and variables the examples use', () => {
    const names = (text: string) =>
      new Set([...text.matchAll(/\b(secrets|vars)\.([A-Z0-9_]+)/g)].map((m) => m[0]));
    const inExamples = names(examples);
    expect([...names(readme)].filter((name) => !inExamples.has(name))).toEqual([]);
    for (const name of [...inExamples].filter(
      (name) => name.startsWith('vars.') || name.startsWith('secrets.'),
    )) {
      const bare = name.slice(name.indexOf('.') + 1);
      expect(readme, `README does not name ${bare}, which the examples read`).toContain(`\`${bare}\``);
    }
  });

  it('names the action by its repository path and advises pinning a commit SHA', () => {
    const uses = [...`${readme}\n${examples}`.matchAll(/uses: (\S*criu-container-migrate\S*)/g)].map(
      (m) => m[1],
    );
    expect(uses.length).toBeGreaterThan(0);
    // The README's pinning advice shows a placeholder: @<40-character commit SHA>.
    for (const ref of uses) expect(ref).toMatch(/^OWNER\/criu-container-migrate@(v0|<\S*)$/);
    expect(readme).toMatch(/pin a full commit SHA/);
  });

  it('says only one pending run per concurrency group is kept', () => {
    expect(readme).toMatch(/only one pending\s+run per group/);
  });

  it('lists only dependencies src/ imports', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    // Static imports and the lazy import() of @actions/artifact alike.
    const imported = (name: string) =>
      sources.some(({ text }) => text.includes(`from '${name}`) || text.includes(`import('${name}`));
    const unused = Object.keys(pkg.dependencies).filter((name) => !imported(name));
    expect(unused, 'dependencies no file under src/ imports: drop them (README, Dependencies)').toEqual([]);
  });

  it('links SECURITY.md and CHANGELOG.md, which exist', () => {
    for (const file of ['SECURITY.md', 'CHANGELOG.md']) {
      expect(readme).toContain(`(${file})`);
      expect(read(file).length).toBeGreaterThan(0);
    }
  });
});

describe('docs/hosts.md on volumes', () => {
  it('says local named volumes move with the container, and only other drivers must exist', () => {
    const hosts = read('docs/hosts.md');
    const paragraph = hosts.split('\n\n').find((p) => p.includes('`VOLUME_MISSING`')) ?? '';
    expect(paragraph).toMatch(/other than `local`/);
    expect(paragraph).toMatch(/move with the container/);
    expect(hosts).not.toMatch(/named volumes with\s+their data/);
  });
});

describe('README for a newcomer', () => {
  const headings = readme.split('\n').filter((line) => /^##? /.test(line));
  const at = (heading: string) => headings.indexOf(heading);

  it('starts with what the action does, then the workflow quick start, then the developer commands', () => {
    expect(readme.slice(0, readme.indexOf('\n## '))).toMatch(
      /GitHub Action that moves a \*\*running\*\* Docker/,
    );
    expect(headings[1]).toBe('## Quick start');
    expect(at('## For developers')).toBe(2);
    const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## For developers'));
    // Host preparation in three steps pointing at docs/hosts.md, then the uses: block.
    const steps = quick.split('\n').filter((line) => /^\d\. /.test(line));
    expect(steps.map((line) => line.slice(0, 2))).toEqual(['1.', '2.', '3.']);
    const stepsText = quick.slice(quick.indexOf('1. '), quick.indexOf('```yaml'));
    expect(stepsText.match(/\(docs\/hosts\.md[#)]/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(quick.indexOf('```yaml')).toBeGreaterThan(quick.indexOf('3. '));
    expect(quick).toMatch(/uses: OWNER\/criu-container-migrate@v0/);
    const developers = readme.slice(
      readme.indexOf('## For developers'),
      readme.indexOf('\n## ', readme.indexOf('## For developers') + 1),
    );
    expect(developers).toContain('npm ci && npm run demo');
    expect(developers).toContain('npm test');
  });

  it('keeps "What it does not do" and the compatibility table, and links the internals that moved out', () => {
    expect(at('## What it does not do')).toBeGreaterThan(0);
    expect(at('## Compatibility')).toBeGreaterThan(0);
    for (const heading of [
      '## How a migration runs',
      '## Benchmark',
      '### The test bed',
      '### Never two copies, never none',
    ]) {
      expect(at(heading), `${heading} belongs in docs/, not README`).toBe(-1);
    }
    for (const file of MOVED_DOCS) {
      expect(readme, `README links ${file}`).toContain(`](${file})`);
      expect(read(file).length).toBeGreaterThan(0);
    }
    expect(read('docs/internals.md')).toMatch(/undo journal/);
    expect(read('docs/internals.md')).toMatch(/^## How a migration runs$/m);
    expect(read('docs/benchmark.md')).toMatch(/downtime ratio seed\/action/);
    expect(read('docs/testbed.md')).toMatch(/TESTBED_HOST1_ADDR/);
  });
});
