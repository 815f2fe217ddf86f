import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import type { CommandResult, Host } from '../../src/host/host.js';
import { appendNotes, runChecked, shellQuote, tailLines } from '../../src/host/shell.js';

/** What /bin/sh makes of the quoted words: each argument, NUL-terminated. */
function throughSh(args: string[]): string[] {
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${shellQuote(args)}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

const ODD = [
  'plain',
  '',
  'two words',
  '  leading and trailing  ',
  "it's",
  'say "hi"',
  `both ' and "`,
  '$HOME',
  // Split so it does not read as a template placeholder.
  '$' + '{PATH}',
  '$(id)',
  '`id`',
  'a\\b',
  'trailing backslash\\',
  '\\',
  'line1\nline2',
  '\n',
  'tab\there',
  'cr\rhere',
  '*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '#not a comment',
  'a#b',
  '!bang',
  "it's !bang",
  '&&',
  ';',
  '|',
  '>out',
  '<in',
  '(sub)',
  '{a,b}',
  'a=b',
  '--flag=value with space',
  '-n',
  '%s',
  'héllo wörld',
  '日本語',
  '🙂 emoji',
  'nbsp\u00a0here',
  '\u2028separator',
  "'",
  '"',
  "''",
  '""',
  '\\"',
  "\\'",
  'C:\\dir',
  'a:b',
];

describe('shellQuote', () => {
  it.each(ODD.map((s) => [JSON.stringify(s), s]))('round-trips %s through /bin/sh', (_label, value) => {
    expect(throughSh([value])).toEqual([value]);
  });

  it('keeps words apart when quoting many at once', () => {
    expect(throughSh(ODD)).toEqual(ODD);
  });

  it('round-trips random strings of shell-special characters', () => {
    // A fixed seed keeps failures reproducible.
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const alphabet = ` \t\n'"\\$\`!*?[]{}()<>|&;#~=%^@:,.-_/aZ09é日\u00a0`;
    const words: string[] = [];
    for (let i = 0; i < 300; i++) {
      let word = '';
      const length = Math.floor(random() * 12);
      for (let j = 0; j < length; j++) word += alphabet[Math.floor(random() * alphabet.length)];
      words.push(word);
    }
    expect(throughSh(words)).toEqual(words);
  });

  it('quotes a command for sh -c so it runs as one', () => {
    const inner = `printf '%s|' "$0" 'x y'; echo "$HOME" >/dev/null`;
    const out = execFileSync('/bin/sh', ['-c', `sh -c ${shellQuote([inner])} zero`], { encoding: 'utf8' });
    expect(out).toBe('zero|x y|');
  });

  it('refuses NUL bytes, which no argument can hold', () => {
    expect(() => shellQuote(['a\0b'])).toThrow(TypeError);
  });
});

function fakeHost(result: CommandResult): Host & { commands: string[] } {
  const commands: string[] = [];
  return {
    role: 'target',
    address: 'root@10.0.0.3:22',
    commands,
    run: async (command) => {
      commands.push(command);
      return result;
    },
    spawn: () => Promise.reject(new Error('not used')),
    close: async () => {},
  };
}

describe('runChecked', () => {
  it('returns the result of a command that exits 0', async () => {
    const host = fakeHost({ exitCode: 0, stdout: 'ok\n', stderr: 'noise' });
    await expect(runChecked(host, 'true', { step: 'preflight' })).resolves.toEqual({
      exitCode: 0,
      stdout: 'ok\n',
      stderr: 'noise',
    });
    expect(host.commands).toEqual(['true']);
  });

  it('throws COMMAND_FAILED naming the step, the host and the stderr tail', async () => {
    const stderr = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
    const host = fakeHost({ exitCode: 3, stdout: '', stderr: `${stderr}\n` });
    const error = await runChecked(host, 'criu check', { step: 'preflight' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    const failure = error as MigrationError;
    expect(failure.code).toBe('COMMAND_FAILED');
    expect(failure.step).toBe('preflight');
    expect(failure.host).toBe('target root@10.0.0.3:22');
    expect(failure.message).toContain('criu check');
    expect(failure.message).toContain('exited with 3');
    expect(failure.detail?.split('\n')).toHaveLength(20);
    expect(failure.detail?.startsWith('line 11\n')).toBe(true);
    expect(failure.detail?.endsWith('line 30')).toBe(true);
  });

  it('uses the code and description it is given', async () => {
    const host = fakeHost({ exitCode: 1, stdout: '', stderr: 'Error: No such container: web' });
    const error = await runChecked(host, 'docker inspect web', {
      step: 'preflight',
      code: 'CONTAINER_NOT_FOUND',
      what: 'inspecting container web',
      remedy: 'check the container name',
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'CONTAINER_NOT_FOUND',
      message: 'inspecting container web failed: exited with 1',
      detail: 'Error: No such container: web',
      remedy: 'check the container name',
    });
  });

  it('falls back to stdout when stderr is empty, and says when there was no exit status', async () => {
    const host = fakeHost({ exitCode: -1, stdout: 'partial output\n', stderr: '' });
    const error = await runChecked(host, 'x', { step: 'transfer' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ detail: 'partial output' });
    expect((error as Error).message).toContain('did not exit normally');
  });

  it('passes run options through', async () => {
    const seen: unknown[] = [];
    const host: Host = {
      ...fakeHost({ exitCode: 0, stdout: '', stderr: '' }),
      run: async (_command, options) => {
        seen.push(options);
        return { exitCode: 0, stdout: '', stderr: '' };
      },
    };
    await runChecked(host, 'cat', { step: 'stage', options: { input: 'data', timeoutMs: 5 } });
    expect(seen).toEqual([{ input: 'data', timeoutMs: 5 }]);
  });
});

describe('output helpers', () => {
  it('tailLines keeps the last lines without trailing blank ones', () => {
    expect(tailLines('a\nb\nc\n\n', 2)).toBe('b\nc');
    expect(tailLines('')).toBe('');
  });

  it('appendNotes adds bracketed notes on their own lines', () => {
    expect(appendNotes('', [])).toBe('');
    expect(appendNotes('err', ['timed out'])).toBe('err\n[timed out]\n');
    expect(appendNotes('err\n', ['a', 'b'])).toBe('err\n[a]\n[b]\n');
  });
});
