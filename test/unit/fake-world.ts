/**
 * A fake pair of hosts for migrate(): each has a simulated Docker (containers, images), a set of
 * paths (what mkdir, tar -x, rm -rf and the journal writes leave) and answers the shell text the
 * action sends, matched by regular expressions. It is a fake, not an emulator: it knows the
 * commands this code base issues, answers the preflight probes from captured fixtures, and lets
 * anything else succeed with no output (recorded in `unknown` so a test can see it).
 *
 * Faults are injected by the index of a command in the run (both hosts counted together):
 *   fail        the command exits 1 with "injected" on stderr and does nothing;
 *   drop        the host throws SSH_DISCONNECTED for it and for every later command;
 *   drop-after  the command takes effect, then the connection drops (the answer is lost);
 *   timeout     the command takes effect but is reported as timed out (exit -1, or killed for a process);
 *   cancel      the run's cancellation fires as the command starts (it still completes).
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { parse } from 'shell-quote';
import { vi } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { NO_GO_EXIT } from '../../src/host/armed.js';
import type { CommandResult, Host, HostProcess, ProcessExit, RunOptions } from '../../src/host/host.js';
import { CODEC_PROBE } from '../../src/policy/compression.js';
import { FACT_COMMANDS } from '../../src/probe/facts.js';
import { CPUINFO_CHECK_COMMAND, CPUINFO_DUMP_COMMAND } from '../../src/probe/preflight-facts.js';

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');

export const SOURCE_ID = 'a59fd1db4de3d2e40b433b763bff36eb91ad7bced58df9d4d0ad1655a17c2d7e';
export const IMAGE_ID = 'sha256:ba88fefd8ab845ec2abeb85474b16c6a6d0a22a840e09157c088b603e03f9bba';
export const IMAGE_TAG = 'testbed/busybox:1';
export const NAME = 'ctr';
/** What `sha256sum <inventory.img` prints for every dump the fake makes. */
export const INVENTORY_SHA = 'f'.repeat(64);
const DOCKER_ROOT = '/var/lib/docker';
const INIT = 'testbed-counter';
/** A CRIU image with its two magic numbers and no entries. */
const EMPTY_CRIU_IMAGE = Buffer.from([0x19, 0x43, 0x56, 0x54, 0, 0, 0, 0]).toString('base64');

export type FaultKind = 'fail' | 'drop' | 'drop-after' | 'timeout' | 'cancel';
export interface Fault {
  index: number;
  kind: FaultKind;
}

export interface Issued {
  index: number;
  host: string;
  kind: 'run' | 'spawn';
  /** The command as written by the action, without bindSignal's tag wrapper. */
  command: string;
  /** For a journal write: the status and newest entry it writes. */
  journal?: string;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited';

export interface FakeContainer {
  id: string;
  name: string;
  image: string;
  imageRef: string;
  status: ContainerStatus;
  restartPolicy: string;
  upperDir: string;
}

const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
const failed = (stderr: string, exitCode = 1): CommandResult => ({
  exitCode,
  stdout: '',
  stderr: `${stderr}\n`,
});
const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** The inverse of shellQuote for one word (shell-quote's three forms). */
export function unquoteWord(word: string): string {
  if (word.startsWith("'") && word.endsWith("'")) return word.slice(1, -1).replace(/'"'"'/g, "'");
  if (word.startsWith('"') && word.endsWith('"')) return word.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  return word.replace(/\\([\s\S])/g, '$1');
}

/** bindSignal runs `CRIU_MIGRATE_CMD=<tag>; export CRIU_MIGRATE_CMD; exec sh -c <command>`. */
export function untag(command: string): string {
  const match = /^CRIU_MIGRATE_CMD=[0-9a-f]{16}; export CRIU_MIGRATE_CMD; exec sh -c ([\s\S]*)$/.exec(
    command,
  );
  return match?.[1] === undefined ? command : unquoteWord(match[1]);
}

/** The plain words of a simple command (shell-quote's parse; operators dropped). */
function words(command: string): string[] {
  return parse(command).filter((token): token is string => typeof token === 'string');
}

// --- one machine ---------------------------------------------------------------------------------

/** A tar stream between the fake hosts: the files it holds, relative to the directory packed. */
interface Payload {
  kind: 'tar' | 'image' | 'file';
  files?: string[];
  /** A single file's text (`cat FILE`). */
  text?: string;
  imageId?: string;
  tags?: string[];
}

export class FakeMachine {
  readonly containers: FakeContainer[] = [];
  /** Image ID to its tags. */
  readonly images = new Map<string, string[]>();
  /** Every file and directory the run could have made or removed (directories with all parents). */
  readonly paths = new Set<string>();
  readonly contents = new Map<string, string>();
  /** What existed before the run: `leftovers()` is whatever is new and not expected. */
  baseline = new Set<string>();
  connected = true;
  /** Commands no rule knew, answered with success and no output. */
  readonly unknown: string[] = [];
  private created = 0;
  private restoreCopies = 0;

  /** What the probe for containerd's TMPDIR prints on this host. */
  containerdProbe = 'ok docker 4242 /tmp\n';

  constructor(readonly role: 'source' | 'target') {}

  container(ref: string): FakeContainer | undefined {
    return this.containers.find(
      (c) => c.id === ref || c.name === ref.replace(/^\//, '') || (ref.length >= 12 && c.id.startsWith(ref)),
    );
  }

  add(path: string): void {
    for (let p = path; p !== '/' && p !== '.' && p !== ''; p = p.slice(0, p.lastIndexOf('/')) || '/') {
      this.paths.add(p);
    }
  }

  remove(path: string): void {
    for (const p of [...this.paths]) if (p === path || p.startsWith(`${path}/`)) this.paths.delete(p);
    for (const p of [...this.contents.keys()])
      if (p === path || p.startsWith(`${path}/`)) this.contents.delete(p);
  }

  exists(path: string): boolean {
    return this.paths.has(path);
  }

  /** mv -T: the path and everything under it, with their contents. */
  rename(from: string, to: string): void {
    for (const p of [...this.paths])
      if (p === from || p.startsWith(`${from}/`)) {
        this.paths.delete(p);
        this.add(to + p.slice(from.length));
      }
    for (const [p, text] of [...this.contents.entries()])
      if (p === from || p.startsWith(`${from}/`)) {
        this.contents.delete(p);
        this.contents.set(to + p.slice(from.length), text);
      }
  }

  under(prefix: string): string[] {
    return [...this.paths].filter((p) => p.startsWith(`${prefix}/`)).sort();
  }

  /** Paths that are new since the baseline, other than the journal's and a live container's own. */
  leftovers(): string[] {
    const live = this.containers.flatMap((c) => [
      c.upperDir.replace(/\/diff$/, ''),
      `${DOCKER_ROOT}/containers/${c.id}`,
    ]);
    return [...this.paths]
      .filter(
        (p) =>
          !this.baseline.has(p) &&
          !p.startsWith('/var/lib/criu-migrate/containers/') &&
          !p.startsWith('/var/lib/criu-migrate/series'),
      )
      .filter(
        (p) => !live.some((dir) => p === dir || (p.startsWith(`${dir}/`) && !p.includes('/checkpoints/'))),
      )
      .sort();
  }

  journal(): { status: string; entries: unknown[] } | undefined {
    const text = this.contents.get(`/var/lib/criu-migrate/containers/${NAME}/journal.json`);
    return text === undefined ? undefined : JSON.parse(text);
  }

  addContainer(container: FakeContainer): void {
    this.containers.push(container);
    this.add(container.upperDir);
    this.add(`${DOCKER_ROOT}/containers/${container.id}/config.v2.json`);
  }

  inspectJson(c: FakeContainer): string {
    const [template] = JSON.parse(fixture('docker26/inspect-testbed-counter.json')) as [
      Record<string, unknown>,
    ];
    const inspect = structuredClone(template) as {
      Id: string;
      Name: string;
      Image: string;
      State: Record<string, unknown>;
      HostConfig: { RestartPolicy: { Name: string } };
      GraphDriver: { Data: Record<string, string> };
      Config: { Image: string; Hostname: string };
    };
    inspect.Id = c.id;
    inspect.Name = `/${c.name}`;
    inspect.Image = c.image;
    inspect.Config.Image = c.imageRef;
    const live = c.status === 'running' || c.status === 'paused';
    inspect.State = {
      ...inspect.State,
      Status: c.status,
      Running: live,
      Paused: c.status === 'paused',
      Pid: live ? 15906 : 0,
    };
    inspect.HostConfig.RestartPolicy.Name = c.restartPolicy;
    const layer = c.upperDir.replace(/\/diff$/, '');
    inspect.GraphDriver.Data = {
      LowerDir: `${layer}-init/diff`,
      MergedDir: `${layer}/merged`,
      UpperDir: c.upperDir,
      WorkDir: `${layer}/work`,
    };
    return JSON.stringify([inspect]);
  }

  /** Runs one command's effect; `input` is its standard input. */
  execute(command: string, input = ''): CommandResult {
    const fact = FACTS[command];
    if (fact) return fact();
    if (command === CPUINFO_DUMP_COMMAND) return ok(fixture('preflight/cpuinfo-dump.b64'));
    if (command === CPUINFO_CHECK_COMMAND) return ok();
    if (command === CODEC_PROBE) return ok('zstd\ngzip\n');
    for (const [pattern, answer] of this.rules) {
      const match = pattern.exec(command);
      if (match) return answer(match, input);
    }
    if (/^docker /.test(command) && !command.includes('\n')) return this.docker(words(command), command);
    return this.unknownCommand(command);
  }

  /** Commands no rule knows succeed with no output, and are noted. */
  private unknownCommand(command: string): CommandResult {
    this.unknown.push(command);
    return ok();
  }

  private readonly rules: [RegExp, (m: RegExpExecArray, input: string) => CommandResult][] = [
    // DockerCli.startFromCheckpoint (oneRestoreAtATime): the docker command under its host's lock.
    [
      /^if command -v flock [^\n]*\n[\s\S]*\nexec (docker start --checkpoint \S+ -- \S+)$/,
      (m) => this.docker(words(m[1] ?? ''), m[1] ?? ''),
    ],
    // DockerCli.kill (killScript): each process of a paused container first, then docker kill.
    [
      /^paused=\$\(docker container inspect --format '\{\{\.State\.Paused\}\}' -- (\S+)\) \|\| exit 1\n[\s\S]*out=\$\(docker kill --signal KILL /,
      (m) => {
        const ref = unquoteWord(m[1] ?? '');
        const result = this.docker(
          ['docker', 'kill', '--signal', 'KILL', ref],
          `docker kill --signal KILL ${ref}`,
        );
        if (result.exitCode !== 0 && /not running/.test(result.stderr) && this.container(ref)) return ok();
        return result;
      },
    ],
    // The lock and journal key: the container's name (guard.ts containerKey).
    [
      /^docker inspect --type container --format '\{\{\.Name\}\}' -- (\S+)$/,
      (m) => {
        const c = this.container(unquoteWord(m[1] ?? ''));
        return c ? ok(`/${c.name}\n`) : failed(`Error: No such object: ${m[1]}`);
      },
    ],
    [/^if \[ -f (\S+) \]; then cat \1; fi$/, (m) => ok(this.contents.get(unquoteWord(m[1] ?? '')) ?? '')],
    [/^\[ -e (\S+) \]$/, (m) => (this.exists(unquoteWord(m[1] ?? '')) ? ok() : failed('', 1))],
    [/^test -f (\S+)$/, (m) => (this.contents.has(unquoteWord(m[1] ?? '')) ? ok() : failed('', 1))],
    // A file written once (the store's series.json).
    [
      /^umask 077; f=(\S+); \[ -s "\$f" \] \|\| \{ cat >"\$f\.new" && mv -f "\$f\.new" "\$f"; \}$/,
      (m, input) => {
        const file = unquoteWord(m[1] ?? '');
        if (!this.contents.has(file)) {
          this.add(file);
          this.contents.set(file, input);
        }
        return ok();
      },
    ],
    // The store's manifests (store.ts listStoredCheckpoints).
    [
      /^for f in (\S+)\/\*\/\*\/manifest\.json \S+; do \[ -f "\$f" \] \|\| continue; printf '%s\\n' "\$f"; cat "\$f"; printf '\\n\\036\\n'; done$/,
      (m) => {
        const home = unquoteWord(m[1] ?? '');
        const found = [...this.contents.entries()].filter(
          ([path]) =>
            path.startsWith(`${home}/`) && /\/[^/]+\/[^/]+\/manifest\.json$/.test(path.slice(home.length)),
        );
        return ok(found.map(([path, text]) => `${path}\n${text}\n\x1e\n`).join(''));
      },
    ],
    // The writable layer as frozen, into a file on the source (checkpoint mode).
    [
      /^umask 077; tar -C (\S+) [^\n]*-cf - \. >(\S+)$/,
      (m) => {
        const dir = unquoteWord(m[1] ?? '');
        if (!this.exists(dir)) return failed(`tar: ${dir}: Cannot open: No such file or directory`, 2);
        const file = unquoteWord(m[2] ?? '');
        const files = this.under(dir).map((p) => p.slice(dir.length + 1));
        this.add(file);
        // Kept as the stream it would be, so a restore can extract it.
        this.contents.set(
          file,
          JSON.stringify({ kind: 'tar', files: files.length > 0 ? files : ['from-source'] }),
        );
        return ok();
      },
    ],
    // CRIU's record of the open files, for the layer proof: none in the fake's container.
    [/^cd \S+ && base64 -w0 files\.img && printf /, () => ok(`${EMPTY_CRIU_IMAGE}\n`)],
    // The store's image, hashed as stored, then put in place.
    [
      /^umask 077; t=(\S+); printf '%s %s\\n' [^\n]* >"\$t\.sha256" && mv "\$t\.sha256" (\S+) && mv "\$t" (\S+)$/,
      (m) => {
        const temp = unquoteWord(m[1] ?? '');
        if (!this.exists(temp)) return failed(`stat: cannot statx '${temp}': No such file or directory`);
        const sum = unquoteWord(m[2] ?? '');
        this.add(sum);
        this.contents.set(
          sum,
          `${(this.contents.get(temp) ?? '').length} ${sha256(this.contents.get(temp) ?? '')}\n`,
        );
        this.rename(temp, unquoteWord(m[3] ?? ''));
        return ok();
      },
    ],
    [
      /^cat (\S+\.sha256)$/,
      (m) => {
        const file = unquoteWord(m[1] ?? '');
        const text = this.contents.get(file);
        return text === undefined ? failed(`cat: ${file}: No such file or directory`) : ok(text);
      },
    ],
    // A small file written whole from the command's input (a checkpoint's config.json).
    [
      /^umask 077; cat >(\S+)$/,
      (m, input) => {
        const file = unquoteWord(m[1] ?? '');
        if (!this.exists(file.slice(0, file.lastIndexOf('/'))))
          return failed(`sh: ${file}: No such file or directory`, 2);
        this.add(file);
        this.contents.set(file, input);
        return ok();
      },
    ],
    // Every file of a partial checkpoint with its size and hash (store.ts digestFiles).
    [
      /^cd (\S+) && find \. -type f ! -name manifest\.json -printf /,
      (m) => {
        const dir = unquoteWord(m[1] ?? '');
        const all = this.under(dir);
        const files = all.filter(
          (p) => !all.some((q) => q.startsWith(`${p}/`)) && !p.endsWith('/manifest.json'),
        );
        return ok(
          files
            .map((p) => {
              // A file the fake keeps no text for hashes as empty, wherever it moves.
              const text = this.contents.get(p) ?? '';
              return `${text.length} ${sha256(text)} ${p.slice(dir.length + 1)}\n`;
            })
            .join(''),
        );
      },
    ],
    // The commit point of a checkpoint: the manifest goes in, one rename makes it a checkpoint.
    [
      /^umask 077; cat >(\S+) && mv -T (\S+) (\S+) && rm -f (\S+)$/,
      (m, input) => {
        const manifest = unquoteWord(m[1] ?? '');
        const from = unquoteWord(m[2] ?? '');
        if (!this.exists(from)) return failed(`mv: cannot stat '${from}': No such file or directory`);
        this.add(manifest);
        this.contents.set(manifest, input);
        this.rename(from, unquoteWord(m[3] ?? ''));
        this.remove(unquoteWord(m[4] ?? ''));
        return ok();
      },
    ],
    // Retention (checkpoint mode): partial checkpoints of runs that are gone, under the series lock.
    [
      /^for d in (\S+)\/\.\*\.partial; do \[ -d "\$d" \] \|\| continue; rm -rf -- "\$d" && echo "\$d"; done; true$/,
      (m) => {
        const home = unquoteWord(m[1] ?? '');
        const gone = [...this.paths].filter(
          (p) => /^\/\.[^/]+\.partial$/.test(p.slice(home.length)) && p.startsWith(home),
        );
        for (const dir of gone) this.remove(dir);
        return ok(gone.map((dir) => `${dir}\n`).join(''));
      },
    ],
    // The store's images lock (store.ts acquireDirLockScript) and its release.
    [
      /^l=(\S+); i=0\nwhile ! mkdir "\$l" 2>\/dev\/null; do\n[\s\S]*\ndone$/,
      (m) => {
        this.add(unquoteWord(m[1] ?? ''));
        return ok();
      },
    ],
    [
      /^rmdir (\S+) 2>\/dev\/null; true$/,
      (m) => {
        this.remove(unquoteWord(m[1] ?? ''));
        return ok();
      },
    ],
    // What the store's checkpoints and partial checkpoints refer to, and the images it holds.
    [
      /^for f in (\S+)\/\*\/\*\/\*\/manifest\.json [^\n]*\nfor f in [^\n]*image\.ref[^\n]*$/,
      (m) => {
        const store = unquoteWord(m[1] ?? '');
        const out: string[] = [];
        for (const [path, text] of this.contents) {
          if (!path.startsWith(`${store}/`)) continue;
          if (path.endsWith('/manifest.json')) out.push(`M\n${text}\n\x1e\n`);
          else if (/\/\.[^/]+\.partial\/image\.ref$/.test(path)) out.push(`R\n${text}\n\x1e\n`);
        }
        return ok(out.join(''));
      },
    ],
    [
      /^cd (\S+) && ls -1 -- \*\.tar 2>\/dev\/null; true$/,
      (m) => {
        const dir = unquoteWord(m[1] ?? '');
        return ok(
          [...this.paths]
            .filter(
              (p) => p.startsWith(`${dir}/`) && p.endsWith('.tar') && !p.slice(dir.length + 1).includes('/'),
            )
            .map((p) => `${p.slice(dir.length + 1)}\n`)
            .join(''),
        );
      },
    ],
    // Restore's check of every stored file against the manifest.
    [
      /^sha256sum -c --quiet$/,
      (_m, input) => {
        const wrong = input.split('\n').flatMap((line) => {
          const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
          if (!match) return [];
          const path = match[2] ?? '';
          if (!this.exists(path))
            return [`sha256sum: ${path}: No such file or directory\n${path}: FAILED open or read`];
          return sha256(this.contents.get(path) ?? '') === match[1] ? [] : [`${path}: FAILED`];
        });
        return wrong.length === 0 ? ok() : { exitCode: 1, stdout: `${wrong.join('\n')}\n`, stderr: '' };
      },
    ],
    // A stored file read whole (a checkpoint's config.json).
    [
      /^cat (\S+\/config\.json)$/,
      (m) => {
        const file = unquoteWord(m[1] ?? '');
        const text = this.contents.get(file);
        return text === undefined ? failed(`cat: ${file}: No such file or directory`) : ok(text);
      },
    ],
    [/^criu cpuinfo check -D \S+$/, () => ok()],
    // A sample of stored pages, to choose the stream's codec: none in the fake's store.
    [/^cd \S+ && \{ criu_migrate_sample\(\) \{/, () => ok('criu-migrate-sample 0 0\n')],
    // A finished journal into the history (host-records.ts archiveRecord).
    [
      /^umask 077; mkdir -p (\S+) && cat >(\S+) && rm -f (\S+) && cd \S+ && ls -1t \| tail -n \+\d+ \| xargs -r rm -f --$/,
      (m, input) => {
        const file = unquoteWord(m[2] ?? '');
        this.add(file);
        this.contents.set(file, input);
        this.remove(unquoteWord(m[3] ?? ''));
        return ok();
      },
    ],
    // The CPU description, dumped into the work directory (checkpoint mode).
    [
      /^umask 077; mkdir -p (\S+) && criu cpuinfo dump -D \S+$/,
      (m) => {
        this.add(`${unquoteWord(m[1] ?? '')}/cpuinfo.img`);
        return ok();
      },
    ],
    // A partial checkpoint's directory, made afresh.
    [
      /^umask 077; rm -rf (\S+) && mkdir -p (\S+)$/,
      (m) => {
        this.remove(unquoteWord(m[1] ?? ''));
        this.add(unquoteWord(m[2] ?? ''));
        return ok();
      },
    ],
    // The store's image, kept once per image ID (store.ts): under the images lock.
    [
      /^l=(\S+); i=0\n[\s\S]*\n\( umask 077; printf '%s\\n' (\S+) >(\S+) && if \[ -s (\S+) \] && \[ -s \S+ \]; then echo have; else echo missing; fi \); r=\$\?; rmdir "\$l"; exit "\$r"$/,
      (m) => {
        const ref = unquoteWord(m[3] ?? '');
        this.add(ref);
        this.contents.set(ref, `${unquoteWord(m[2] ?? '')}\n`);
        return ok(this.exists(unquoteWord(m[4] ?? '')) ? 'have\n' : 'missing\n');
      },
    ],
    // A lock (host-records.ts tryLockAt): mkdir of the lock directory is the lock.
    [
      /^umask 077; mkdir -p \S+ \|\| exit 1\nl=(\S+)\nif mkdir "\$l" 2>\/dev\/null; then cat >"\$l\/owner\.json" && echo acquired; exit; fi\n/,
      (m, input) => {
        const lock = unquoteWord(m[1] ?? '');
        const owner = `${lock}/owner.json`;
        if (!this.exists(lock)) {
          this.add(owner);
          this.contents.set(owner, input);
          return ok('acquired\n');
        }
        return ok(`held 0\nfp fake\n${this.contents.get(owner) ?? ''}\n`);
      },
    ],
    // Its release, only by the run that holds it.
    [
      /^umask 077; l=(\S+)\nexec 9>>"\$l\.guard"[\s\S]*\nif grep -q (\S+) "\$l\/owner\.json" 2>\/dev\/null; then rm -rf "\$l"; fi$/,
      (m) => {
        const lock = unquoteWord(m[1] ?? '');
        if ((this.contents.get(`${lock}/owner.json`) ?? '').includes(unquoteWord(m[2] ?? '')))
          this.remove(lock);
        return ok();
      },
    ],
    [/^grep -q \S+ \S+\/owner\.json && touch \S+$/, () => ok()],
    // The journal: umask 077; d=DIR; mkdir -p "$d" && cat >"$d/journal.json.$$.new" && mv -f NEW "$d/journal.json"
    [
      /^umask 077; d=(\S+); mkdir -p "\$d" && cat >\S+ && mv -f \S+ "\$d\/journal\.json"$/,
      (m, input) => {
        const file = `${unquoteWord(m[1] ?? '')}/journal.json`;
        this.add(file);
        this.contents.set(file, input);
        return ok();
      },
    ],
    // The ID docker create --cidfile wrote (rollback of a create whose ID the journal lacks).
    [/^cat -- (\S+) 2>\/dev\/null; true$/, (m) => ok(this.contents.get(unquoteWord(m[1] ?? '')) ?? '')],
    // The container's checkpoint series, kept by the action per container ID.
    [
      /^cat (\/var\/lib\/criu-migrate\/series\/[0-9a-f]+\.json) 2>\/dev\/null; true$/,
      (m) => ok(this.contents.get(m[1] ?? '') ?? ''),
    ],
    [
      /^umask 077; mkdir -p \/var\/lib\/criu-migrate\/series && f=(\S+) && cat >"\$f\.new" && mv -f "\$f\.new" "\$f"$/,
      (m, input) => {
        const file = unquoteWord(m[1] ?? '');
        this.add(file);
        this.contents.set(file, input);
        return ok();
      },
    ],
    // The preflight probes: one script of sections, each answered on its own.
    [/criu-migrate-probe\.XXXXXX/, (m) => this.sections(m.input)],
    [/^id -u; id -un;/, () => ok('0\nroot\n\n')],
    // The host's clock, read before a pause (a checkpoint roll-forward asks Docker's events from there).
    [/^date \+%s\.%N$/, () => ok('1765000000.123456789\n')],
    // Which process holds which socket: the fake container's init holds none.
    [/^for p in \$\(docker top \S+ -o pid \| tail -n \+2\); do\n/, () => ok()],
    [
      /\/proc\/cpuinfo/,
      () => ok('model name\t: AMD EPYC\nflags\t\t: fpu vme de pse tsc msr sse sse2 avx2\n'),
    ],
    [/\/proc\/meminfo/, () => ok('MemTotal:       24683620 kB\nMemAvailable:   23650764 kB\n')],
    [
      /^p=(\S+); echo "\$p"; while/,
      (m) => {
        const path = unquoteWord(m[1] ?? '');
        return ok(
          `${path}\n${path}\nFilesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda 264212084 25129372 181261540 13% /\n`,
        );
      },
    ],
    [
      /^v1=; v2=/,
      () => ok('cgroup v1\nrss 9162752\nshmem 0\ntotal_rss 9162752\ntotal_shmem 0\nusage_bytes 10665984\n'),
    ],
    [
      /^cat \/proc\/\d+\/net\/tcp /,
      () =>
        ok(
          '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n',
        ),
    ],
    [/^du -skx (\S+)$/, (m) => ok(`16\t${unquoteWord(m[1] ?? '')}\n`)],
    // checkpoint: where runc keeps the container's state
    [
      /^\[ -f \S*moby\/([0-9a-f]{64})\/state\.json/,
      (m) => {
        const c = this.container(m[1] ?? '');
        return ok(
          c && (c.status === 'running' || c.status === 'paused') ? '/run/docker/runtime-runc/moby\n' : '',
        );
      },
    ],
    [
      /^umask 077; rm -rf (\S+) && mkdir -p (\S+) (\S+) && chmod 700 \S+$/,
      (m) => {
        this.remove(unquoteWord(m[1] ?? ''));
        this.add(unquoteWord(m[2] ?? ''));
        this.add(unquoteWord(m[3] ?? ''));
        return ok();
      },
    ],
    [
      /^umask 077; runc --root \S+ checkpoint --leave-running --image-path (\S+) --work-path (\S+) ([0-9a-f]{64}) \|\| exit \$\?\n/,
      (m) => {
        const c = this.container(m[3] ?? '');
        const images = unquoteWord(m[1] ?? '');
        if (!c || (c.status !== 'running' && c.status !== 'paused'))
          return failed('container is not running');
        if (!this.exists(images)) return failed(`${images}: No such file or directory`);
        for (const file of ['inventory.img', 'pages-1.img', 'core-1.img']) this.add(`${images}/${file}`);
        this.add(`${unquoteWord(m[2] ?? '')}/dump.log`);
        // The fake's pages are random: a sample that does not compress.
        const sample = /criu-migrate-sample/.test(m.input ?? '')
          ? 'criu-migrate-sample 2097152 2097215\n'
          : '';
        return ok(`criu-migrate-inventory ${INVENTORY_SHA}\n${sample}`);
      },
    ],
    [
      /^cd (\S+) \|\| exit 1\ndu -sb \./,
      (m) => (this.exists(unquoteWord(m[1] ?? '')) ? ok('40960\n\n') : failed("cd: can't cd")),
    ],
    [/^f=\S+; \[ -f "\$f" \] \|\| exit 0;/, () => ok()],
    // The target container, created from a script that keeps the environment in a file.
    [
      /^umask 077; d=(\S+); mkdir -p "\$d" && cat >"\$d\/(?:entries|env)" \|\| \{ rm -rf "\$d"; exit 1; \}\n(?:perl -e '[^']*' "\$d" )?docker create --env-file "\$d\/env" (?:--cidfile (\S+) )?(.*); s=\$\?\n/,
      (m) => {
        const args = words(m[3] ?? '');
        const cidFile = m[2] ? unquoteWord(m[2]) : undefined;
        const name = args[args.indexOf('--name') + 1] ?? '';
        const imageRef = args[args.indexOf('--') + 1] ?? '';
        const image = this.imageOf(imageRef);
        const restart = args.includes('--restart') ? (args[args.indexOf('--restart') + 1] ?? 'no') : 'no';
        this.add(unquoteWord(m[1] ?? ''));
        this.remove(unquoteWord(m[1] ?? ''));
        if (!image) return failed(`Unable to find image '${imageRef}' locally`, 125);
        if (this.container(name))
          return failed(`Conflict. The container name "/${name}" is already in use`, 125);
        const id = sha256(`${this.role} container ${++this.created}`);
        this.addContainer({
          id,
          name,
          image,
          imageRef,
          status: 'created',
          restartPolicy: restart,
          upperDir: `${DOCKER_ROOT}/overlay2/${sha256(`layer ${id}`)}/diff`,
        });
        if (cidFile) {
          this.add(cidFile);
          this.contents.set(cidFile, id);
        }
        return ok(`${id}\n`);
      },
    ],
    // Which TMPDIR the target's containerd unpacks checkpoints into.
    [/^me=\$\(readlink \/proc\/self\/ns\/mnt\)/, () => ok(this.containerdProbe)],
    // Docker's checkpoint directory built from the staged images (the fake has no links: it copies).
    [
      /^(?:umask 077; )?s=(\S+); c=(\S+); t=\S+; p=\S+\n/,
      (m) => {
        const staged = unquoteWord(m[1] ?? '');
        const dir = unquoteWord(m[2] ?? '');
        if (!this.exists(staged)) return failed(`cd: can't cd to ${staged}`, 2);
        this.add(dir);
        for (const path of this.under(staged)) this.add(`${dir}${path.slice(staged.length)}`);
        return ok('staged-pages\n');
      },
    ],
    // containerd's unpacked copies of a checkpoint (all made by this fake carry INVENTORY_SHA)
    [
      /ctrd-checkpoint\*; do/,
      () => {
        const found = [...this.paths].filter((p) => /^\/tmp\/ctrd-checkpoint[^/]*$/.test(p));
        for (const dir of found) this.remove(dir);
        return ok(found.map((dir) => `${dir}\n`).join(''));
      },
    ],
    [/^rm -rf -- (.+)$/, (m) => this.rmrf(words(m[1] ?? ''))],
    // The writable layer's compression sample, before the freeze: text compresses.
    [/^criu_migrate_sample\(\) \{ \{ tar -C \S+ /, () => ok('criu-migrate-sample 4096 1024\n')],
    // The directories the checkpoint is received into, made before the freeze.
    [
      /^umask 077; mkdir -p ([^\n&|;<>]+)$/,
      (m) => {
        for (const path of words(m[1] ?? '')) this.add(path);
        return ok();
      },
    ],
    [/^docker logs (\S+) 2>&1$/, () => ok(`${INIT} 1\n${INIT} 2\n`)],
    // bindSignal's kill-by-tag script: nothing of ours is left running to kill.
    [/^t='CRIU_MIGRATE_CMD=/, () => ok()],
  ];

  private rmrf(paths: string[]): CommandResult {
    for (const path of paths) this.remove(path);
    return ok();
  }

  private sections(script: string): CommandResult {
    const commands = [...script.matchAll(/\{ \( ([\s\S]*?)\n\) >"\$d\/\d+" 2>&1;/g)].map((m) => m[1] ?? '');
    const names = [...script.matchAll(/echo '@@begin ([a-z0-9_]+)'/g)].map((m) => m[1] ?? '');
    const out = names.map((name, i) => {
      const result = this.execute(commands[i] ?? '');
      return `@@begin ${name}\n${result.stdout}${result.stderr}\n@@end ${name} ${result.exitCode}\n`;
    });
    return ok(out.join(''));
  }

  private imageOf(ref: string): string | undefined {
    for (const [id, tags] of this.images) if (id === ref || tags.includes(ref)) return id;
    return undefined;
  }

  private docker(args: string[], command: string): CommandResult {
    const [, verb = '', ...rest] = args;
    const noSuch = (ref: string) => failed(`Error response from daemon: No such container: ${ref}`);
    if (verb === 'container' && rest[0] === 'inspect') {
      const ref = rest.at(-1) ?? '';
      const c = this.container(ref);
      if (!c) return failed(`Error: No such object: ${ref}`);
      return rest.includes('--format') ? ok(`${c.id}\n`) : ok(this.inspectJson(c));
    }
    if (verb === 'image' && rest[0] === 'inspect') {
      const ref = rest.at(-1) ?? '';
      const id = this.imageOf(ref);
      if (!id) return failed(`Error response from daemon: No such image: ${ref}`);
      if (rest.includes('--format')) return ok(`${id}\n`);
      const [image] = JSON.parse(fixture('docker26/image-testbed-busybox.json')) as [Record<string, unknown>];
      return ok(JSON.stringify([{ ...image, Id: id, RepoTags: this.images.get(id) }]));
    }
    if (verb === 'image' && rest[0] === 'rm') {
      const id = this.imageOf(rest[1] ?? '');
      if (!id) return failed(`Error response from daemon: No such image: ${rest[1]}`);
      if (this.containers.some((c) => c.image === id)) return failed('image is being used by a container', 1);
      this.images.delete(id);
      return ok(`Deleted: ${id}\n`);
    }
    if (verb === 'image' && rest[0] === 'tag') {
      const id = this.imageOf(rest[1] ?? '');
      if (!id) return failed(`No such image: ${rest[1]}`);
      this.images.get(id)?.push(rest[2] ?? '');
      return ok();
    }
    if (verb === 'ps') {
      const ancestor = rest.find((arg) => arg.startsWith('ancestor='))?.slice('ancestor='.length);
      return ok(
        this.containers
          .filter((c) => c.image === ancestor)
          .map((c) => `${c.id}\n`)
          .join(''),
      );
    }
    const ref = rest.at(-1) ?? '';
    const c = this.container(ref);
    switch (verb) {
      case 'top': {
        const top = this.container(rest[0] ?? '');
        if (!top) return noSuch(rest[0] ?? '');
        if (top.status !== 'running' && top.status !== 'paused')
          return failed(`Error response from daemon: container ${rest[0]} is not running`);
        return ok(
          `PID                 PPID                COMMAND\n15906               15880               ${INIT}\n`,
        );
      }
      case 'pause':
        if (!c) return noSuch(ref);
        if (c.status !== 'running')
          return failed(`Error response from daemon: container ${ref} is not running`);
        c.status = 'paused';
        return ok(`${ref}\n`);
      case 'unpause':
        if (!c) return noSuch(ref);
        if (c.status !== 'paused')
          return failed(`Error response from daemon: container ${ref} is not paused`);
        c.status = 'running';
        return ok(`${ref}\n`);
      case 'kill':
        if (!c) return noSuch(ref);
        if (c.status !== 'running' && c.status !== 'paused')
          return failed(
            `Error response from daemon: cannot kill container: ${ref}: container is not running`,
          );
        c.status = 'exited';
        return ok(`${ref}\n`);
      case 'update': {
        if (!c) return noSuch(ref);
        c.restartPolicy = rest[rest.indexOf('--restart') + 1] ?? 'no';
        return ok(`${ref}\n`);
      }
      case 'rm':
        if (!c) return noSuch(ref);
        if (!rest.includes('--force') && (c.status === 'running' || c.status === 'paused'))
          return failed('cannot remove a running container');
        this.containers.splice(this.containers.indexOf(c), 1);
        this.remove(`${DOCKER_ROOT}/containers/${c.id}`);
        this.remove(c.upperDir.replace(/\/diff$/, ''));
        return ok(`${ref}\n`);
      case 'start': {
        const name = rest[rest.indexOf('--checkpoint') + 1] ?? '';
        if (!c) return noSuch(ref);
        if (c.status !== 'created') return failed(`container ${ref} is ${c.status}`);
        const dir = `${DOCKER_ROOT}/containers/${c.id}/checkpoints/${name}`;
        if (!this.exists(`${dir}/inventory.img`)) return failed(`checkpoint ${name} does not exist`);
        if (!this.exists(`${c.upperDir}/from-source`))
          return failed('criu: restore: file missing in the layer');
        c.status = 'running';
        this.add(`/tmp/ctrd-checkpoint${++this.restoreCopies}/inventory.img`);
        return ok();
      }
      default:
        return this.unknownCommand(command);
    }
  }

  // --- streams -----------------------------------------------------------------------------------

  /** A producer stage: what `tar -cf -` or `docker save` would write, or why it cannot. */
  produce(stage: string): { payload?: Payload; error?: string } {
    // A producer that writes files of its own first runs under umask 077.
    stage = stage.replace(/^umask 077; /, '');
    // The live pass of the writable layer tolerates files changing under it (exit 1).
    const tar = /^tar -C (\S+) .*-cf - \.(?:; s=\$\?; \[ "\$s" -eq 1 \] && s=0; exit "\$s")?$/.exec(stage);
    if (tar) {
      const dir = unquoteWord(tar[1] ?? '');
      if (!this.exists(dir)) return { error: `tar: ${dir}: Cannot open: No such file or directory` };
      const files = this.under(dir).map((p) => p.slice(dir.length + 1));
      return { payload: { kind: 'tar', files: files.length > 0 ? files : ['from-source'] } };
    }
    // Named parts of a directory (checkpoint mode sends images/ and cpu/ of its work directory).
    const parts = /^tar -C (\S+) -cf - ((?:\S+ )*\S+)$/.exec(stage);
    if (parts) {
      const dir = unquoteWord(parts[1] ?? '');
      const files = words(parts[2] ?? '').flatMap((part) =>
        this.exists(`${dir}/${part}`)
          ? [part, ...this.under(`${dir}/${part}`).map((p) => p.slice(dir.length + 1))]
          : [],
      );
      if (files.length === 0) return { error: `tar: ${dir}: Cannot stat: No such file or directory` };
      return { payload: { kind: 'tar', files } };
    }
    const cat = /^cat (\S+)$/.exec(stage);
    if (cat) {
      const file = unquoteWord(cat[1] ?? '');
      if (!this.exists(file)) return { error: `cat: ${file}: No such file or directory` };
      const text = this.contents.get(file);
      // A stream kept in a file (a stored image) streams back as what it was.
      const kept = text?.startsWith('{"kind":') ? (JSON.parse(text) as Payload) : undefined;
      return { payload: kept ?? { kind: 'file', text: text ?? `bytes of ${file}` } };
    }
    const save = /^docker save (\S+)$/.exec(stage);
    if (save) {
      const ref = unquoteWord(save[1] ?? '');
      const id = this.imageOf(ref);
      if (!id) return { error: `Error response from daemon: reference does not exist: ${ref}` };
      return { payload: { kind: 'image', imageId: id, tags: [...(this.images.get(id) ?? [])] } };
    }
    return { error: `fake: unknown producer ${stage}` };
  }

  /** A consumer stage: `mkdir -p` happens when it starts, the rest when its input has ended. */
  consume(stage: string): {
    start(): void;
    finish(payload: Payload | undefined): string | undefined;
    said(): string;
  } {
    // The images' receiver: extract, build Docker's checkpoint directory, mark it, report the path.
    const receiver =
      /^umask 077; (tar -C \S+ .*-xf -) \|\| exit \$\?\nr=\$\(([\s\S]*)\) \|\| exit 1\nprintf '(\S+) restore-path %s\\n' "\$r" >&2(?: && printf '%s\\n' (\S+) >(\S+))?$/.exec(
        stage,
      );
    const direct = /^umask 077; (tar -C \S+ .*-xf -)(?: && printf '%s\\n' (\S+) >(\S+))?$/.exec(stage);
    if (receiver || direct) {
      const extract = this.consume((receiver?.[1] ?? direct?.[1]) as string);
      const marker = receiver ? receiver[4] : direct?.[2];
      const markerFile = receiver ? receiver[5] : direct?.[3];
      let note = '';
      return {
        start: () => extract.start(),
        finish: (payload) => {
          const error = extract.finish(payload);
          if (error) return error;
          if (receiver) {
            const built = this.execute(receiver[2] ?? '');
            if (built.exitCode !== 0) return built.stderr || 'building the checkpoint directory failed';
            note = `${receiver[3]} restore-path ${built.stdout.trim()}\n`;
          }
          if (marker && markerFile) this.add(unquoteWord(markerFile));
          return undefined;
        },
        said: () => note,
      };
    }
    // A file as it arrives (checkpoint mode's layer archives and image).
    const into = /^umask 077; cat >(\S+)$/.exec(stage);
    if (into) {
      const file = unquoteWord(into[1] ?? '');
      return {
        start: () => {},
        finish: (payload) => {
          const parent = file.slice(0, file.lastIndexOf('/'));
          if (!this.exists(parent)) return `sh: ${file}: No such file or directory`;
          if (!payload) return 'no input';
          this.add(file);
          this.contents.set(file, payload.text ?? JSON.stringify(payload));
          return undefined;
        },
        said: () => '',
      };
    }
    // Checkpoint mode's CRIU images into the store: extract, then rename images/ to criu/.
    const extractMove = /^umask 077; tar -C (\S+) --no-same-permissions -xf - && mv (\S+) (\S+)$/.exec(stage);
    if (extractMove) {
      const dir = unquoteWord(extractMove[1] ?? '');
      const from = unquoteWord(extractMove[2] ?? '');
      const to = unquoteWord(extractMove[3] ?? '');
      return {
        start: () => {},
        finish: (payload) => {
          if (!this.exists(dir)) return `tar: ${dir}: Cannot open: No such file or directory`;
          if (payload?.kind !== 'tar') return 'tar: This does not look like a tar archive';
          for (const file of payload.files ?? []) this.add(`${dir}/${file}`);
          this.rename(from, to);
          return undefined;
        },
        said: () => '',
      };
    }
    const mkdir = /^umask 077; mkdir -p (\S+) && /.exec(stage);
    const tar = /tar -C (\S+) .*-xp?f -$/.exec(stage);
    return {
      start: () => {
        if (mkdir) this.add(unquoteWord(mkdir[1] ?? ''));
      },
      finish: (payload) => {
        if (/^docker load/.test(stage)) {
          if (payload?.kind !== 'image' || !payload.imageId) return 'Error: open /dev/stdin: no data';
          this.images.set(payload.imageId, payload.tags ?? []);
          return undefined;
        }
        if (tar) {
          const dir = unquoteWord(tar[1] ?? '');
          if (!this.exists(dir)) return `tar: ${dir}: Cannot open: No such file or directory`;
          if (payload?.kind !== 'tar') return 'tar: This does not look like a tar archive';
          for (const file of payload.files ?? []) this.add(`${dir}/${file}`);
          // The source's writable layer gets a marker, so a restore without it fails.
          if (!mkdir) this.add(`${dir}/from-source`);
          return undefined;
        }
        return `fake: unknown consumer ${stage}`;
      },
      said: () => '',
    };
  }
}

const FACTS: Record<string, () => CommandResult> = {
  [FACT_COMMANDS.kernelRelease]: () => ok('6.18.44-fc-v782\n'),
  [FACT_COMMANDS.machine]: () => ok('x86_64\n'),
  [FACT_COMMANDS.criuPath]: () => ok('/usr/sbin/criu\n'),
  [FACT_COMMANDS.criuVersion]: () => ok('Version: 4.2.1\n'),
  [FACT_COMMANDS.criuCheck]: () => ok('Looks good.\n'),
  'criu check --feature mem_dirty_track': () => ok('mem_dirty_track is supported\n'),
  'criu check --feature uffd-noncoop': () => ok('uffd-noncoop is supported\n'),
  'criu check --feature breakpoints': () => ok('breakpoints is supported\n'),
  [FACT_COMMANDS.runcPath]: () => ok('/usr/sbin/runc\n'),
  [FACT_COMMANDS.runcVersion]: () => ok(fixture('facts/runc-1.1.15-version.txt')),
  [FACT_COMMANDS.dockerVersion]: () => ok(fixture('facts/docker-26.1.5-version.json')),
  [FACT_COMMANDS.dockerInfo]: () => ok(fixture('facts/docker-26.1.5-info.json')),
};

// --- processes -----------------------------------------------------------------------------------

/** A command with its streams; `exit` settles a turn after its output has been written. */
class FakeProcess implements HostProcess {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly exit: Promise<ProcessExit>;
  private settle: (exit: ProcessExit) => void = () => {};
  private ended = false;

  /** killedAtEnd: does its work, then is reported killed (a timeout that came too late). */
  constructor(
    private readonly onEvent: () => void,
    private readonly killedAtEnd = false,
  ) {
    this.exit = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  end(exit: ProcessExit, stderr = ''): void {
    if (this.ended) return;
    this.ended = true;
    if (stderr) this.stderr.write(stderr);
    this.stdout.end();
    this.stderr.end();
    setImmediate(() => {
      this.onEvent();
      this.settle(this.killedAtEnd ? { exitCode: null, signal: 'SIGKILL' } : exit);
    });
  }

  kill(): void {
    this.end({ exitCode: null, signal: 'SIGTERM' });
  }
}

/** The stages of relay.ts's hashed scripts: `{ (STAGE) 3>&- 4>&- 5>&-; echo "s $?" >&5; }`. */
function stagesOf(script: string): string[] {
  return [...script.matchAll(/\{ \(([\s\S]*?)\) 3>&- 4>&- 5>&-; echo "s \$\?" >&5; \}/g)].map(
    (m) => m[1] ?? '',
  );
}

/** One variant's branch of an armed stream's `case` over its go line. */
function variantOf(script: string, choice: string): string {
  const start = script.indexOf(`'go ${choice}')\n`);
  if (start < 0) return '';
  const end = script.indexOf('\n;;', start);
  return script.slice(start, end < 0 ? undefined : end);
}

const sumLine = (data: Buffer): string => `criu-migrate-sha256 ${sha256(data)}\n`;

// --- the hosts and the world ---------------------------------------------------------------------

export class FakeHost implements Host {
  readonly address: string;

  constructor(
    private readonly world: FakeWorld,
    readonly machine: FakeMachine,
  ) {
    this.address = `root@fake-${machine.role}:22`;
  }

  get role(): string {
    return this.machine.role;
  }

  async run(command: string, options: RunOptions = {}): Promise<CommandResult> {
    const inner = untag(command);
    if (process.env.FAKE_DEBUG) process.stderr.write(`RUN ${this.role} ${untag(command).slice(0, 160)}\n`);
    const fault = this.world.issue(this, 'run', inner, options.input?.toString());
    if (options.signal?.aborted && fault !== 'cancel')
      return { exitCode: -1, stdout: '', stderr: '[aborted]\n' };
    if (fault === 'fail') return failed('injected');
    if (fault === 'drop') throw this.dropped();
    const input = options.input === undefined ? '' : options.input.toString();
    const result = this.machine.execute(inner, input);
    if (fault === 'drop-after') throw this.dropped();
    if (fault === 'timeout') {
      return {
        exitCode: -1,
        stdout: '',
        stderr: `[timed out after ${options.timeoutMs} ms and was stopped]\n`,
      };
    }
    return result;
  }

  async spawn(command: string): Promise<HostProcess> {
    const inner = untag(command);
    const fault = this.world.issue(this, 'spawn', inner);
    if (fault === 'drop' || fault === 'drop-after') throw this.dropped();
    const proc = new FakeProcess(() => this.world.activity++, fault === 'timeout');
    if (fault === 'fail') {
      proc.stdin.resume();
      proc.end({ exitCode: 1, signal: null }, 'injected\n');
      return proc;
    }
    const stages = stagesOf(inner);
    // An armed stream (host/armed.ts): nothing happens before its go line, which picks the variant.
    const armed = inner.startsWith(`IFS= read -r go || exit ${NO_GO_EXIT}\n`);
    if (armed && /\| hashtee; \} 3>&1 1>&4 \| hashsum/.test(inner)) {
      const input: Buffer[] = [];
      proc.stdin.on('data', (chunk: Buffer) => input.push(chunk));
      proc.stdin.on('end', () => {
        const choice = /^go ([a-z0-9]+)\n/.exec(Buffer.concat(input).toString())?.[1];
        if (choice === undefined) proc.end({ exitCode: NO_GO_EXIT, signal: null });
        else this.producer(proc, stagesOf(variantOf(inner, choice)));
      });
    } else if (armed && /\{ \{ hashtee \| /.test(inner)) this.armedConsumer(proc, inner);
    else if (/\| hashtee; \} 3>&1 1>&4 \| hashsum/.test(inner)) this.producer(proc, stages);
    else if (/\{ \{ hashtee \| /.test(inner)) this.consumer(proc, stages);
    else if (
      /^cat >\/dev\/null; i=0; while \[ "\$i" -lt \d+ \]; do \[ -e .*restore\.log \] && exec tail/.test(inner)
    )
      proc.stdin.resume();
    else {
      this.machine.unknown.push(`(spawn) ${inner}`);
      proc.stdin.resume();
      proc.end({ exitCode: 0, signal: null });
    }
    return proc;
  }

  async close(): Promise<void> {}

  private producer(proc: FakeProcess, stages: string[]): void {
    proc.stdin.resume();
    const { payload, error } = this.machine.produce(stages[0] ?? '');
    if (process.env.FAKE_DEBUG) process.stderr.write(`PRODUCE ${JSON.stringify(stages)} ${error ?? ''}\n`);
    const data = payload ? Buffer.from(JSON.stringify(payload)) : Buffer.alloc(0);
    proc.stdout.write(data);
    proc.end({ exitCode: error ? 2 : 0, signal: null }, `${error ? `${error}\n` : ''}${sumLine(data)}`);
  }

  /** Reads the go line in front of the bytes, then consumes them as the chosen variant's stages. */
  private armedConsumer(proc: FakeProcess, script: string): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(10);
      if (end < 0) return;
      proc.stdin.off('data', onData);
      proc.stdin.off('end', onEnd);
      const choice = /^go ([a-z0-9]+)$/.exec(head.subarray(0, end).toString())?.[1];
      if (choice === undefined) {
        proc.end({ exitCode: NO_GO_EXIT, signal: null });
        return;
      }
      const rest = head.subarray(end + 1);
      this.consumer(proc, stagesOf(variantOf(script, choice)), rest);
    };
    const onEnd = (): void => proc.end({ exitCode: NO_GO_EXIT, signal: null });
    proc.stdin.on('data', onData);
    proc.stdin.on('end', onEnd);
  }

  private consumer(proc: FakeProcess, stages: string[], first?: Buffer): void {
    const stage = this.machine.consume(stages.at(-1) ?? '');
    stage.start();
    const chunks: Buffer[] = first && first.length > 0 ? [first] : [];
    proc.stdin.on('data', (chunk: Buffer) => chunks.push(chunk));
    proc.stdin.on('end', () => {
      const data = Buffer.concat(chunks);
      let payload: Payload | undefined;
      try {
        payload = JSON.parse(data.toString()) as Payload;
      } catch {
        payload = undefined;
      }
      const error = this.machine.connected ? stage.finish(payload) : 'connection lost';
      proc.end(
        { exitCode: error ? 2 : 0, signal: null },
        `${error ? `${error}\n` : ''}${stage.said()}${sumLine(data)}`,
      );
    });
  }

  private dropped(): MigrationError {
    this.machine.connected = false;
    return new MigrationError('SSH_DISCONNECTED', `the SSH connection to ${this.address} dropped`, {
      host: `${this.role} ${this.address}`,
    });
  }
}

/** "running, committed intended": what a journal write carries, to tell the writes apart. */
function journalNote(command: string, input: string | undefined): { journal?: string } {
  if (!/journal\.json\.new/.test(command) || input === undefined) return {};
  const record = JSON.parse(input) as {
    status: string;
    entries: { state: string; action: { kind: string } }[];
  };
  const last = record.entries.at(-1);
  return { journal: `${record.status}, ${last ? `${last.action.kind} ${last.state}` : 'no entries'}` };
}

export class FakeWorld {
  readonly source: FakeHost;
  readonly target: FakeHost;
  /** Every command both hosts were given, in order. */
  readonly issued: Issued[] = [];
  /** Commands no rule knew (answered with success and no output), by host. */
  get unknown(): string[] {
    return [this.source, this.target].flatMap((host) =>
      host.machine.unknown.map((c) => `${host.role}: ${c}`),
    );
  }
  /** Bumped by every command and process exit: lets a test driver tell a busy run from an idle one. */
  activity = 0;

  constructor(
    private readonly fault?: Fault,
    private readonly cancel: () => void = () => {},
  ) {
    const source = new FakeMachine('source');
    const target = new FakeMachine('target');
    source.images.set(IMAGE_ID, [IMAGE_TAG]);
    source.addContainer({
      id: SOURCE_ID,
      name: NAME,
      image: IMAGE_ID,
      imageRef: IMAGE_TAG,
      status: 'running',
      restartPolicy: 'unless-stopped',
      upperDir: `${DOCKER_ROOT}/overlay2/c7dc211da7cd900aefeb451efaf078180b90264b516bfbcc07aa5d915779771d/diff`,
    });
    source.add(`${source.containers[0]?.upperDir}/data/count`);
    for (const machine of [source, target]) {
      for (const dir of ['/var/lib/criu-migrate/work', '/var/lib/criu-migrate/containers', '/tmp'])
        machine.add(dir);
      for (const dir of ['containers', 'overlay2']) machine.add(`${DOCKER_ROOT}/${dir}`);
      machine.baseline = new Set(machine.paths);
    }
    this.source = new FakeHost(this, source);
    this.target = new FakeHost(this, target);
  }
  /**
   * For restore and drill: the source plays a store host holding what `from` (a store a checkpoint
   * run wrote) holds, and runs no container of its own; the target starts empty.
   */
  seedStore(from: FakeMachine): void {
    const store = this.source.machine;
    store.containers.splice(0);
    store.images.clear();
    for (const path of from.paths) store.add(path);
    for (const [path, text] of from.contents) store.contents.set(path, text);
    store.baseline = new Set(store.paths);
    this.target.machine.images.clear();
  }

  /** Records a command and says which fault, if any, hits it. */
  issue(host: FakeHost, kind: 'run' | 'spawn', command: string, input?: string): FaultKind | undefined {
    const index = this.issued.length;
    // The kill-by-tag script names a random tag: recorded without it, so runs compare equal.
    const recorded = command.replace(/CRIU_MIGRATE_CMD=[0-9a-f]{16}/g, 'CRIU_MIGRATE_CMD=<tag>');
    this.issued.push({ index, host: host.role, kind, command: recorded, ...journalNote(command, input) });
    this.activity++;
    if (!host.machine.connected)
      throw new MigrationError('SSH_DISCONNECTED', 'not connected', { host: host.role });
    if (this.fault?.index !== index) return undefined;
    if (this.fault.kind === 'cancel') this.cancel();
    return this.fault.kind;
  }
}

// Timers are fake (the recovery retries and the restore-log follower wait seconds); setImmediate,
// on which the fake's processes and the streams ride, stays real.
export const FAKED = ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] as const;

/**
 * Awaits `work`, letting the fake clock jump to the next timer only when the run has gone quiet:
 * a discrete-event loop, so waits cost nothing and the order of events stays deterministic.
 */
export async function drive<T>(world: FakeWorld, work: Promise<T>): Promise<T> {
  let settled = false;
  work.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  let seen = -1;
  let quiet = 0;
  let jumps = 0;
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (world.activity !== seen) {
      seen = world.activity;
      quiet = 0;
      continue;
    }
    if (++quiet < 3) continue;
    if (vi.getTimerCount() === 0) throw new Error('the run hangs: nothing runs and no timer is pending');
    await vi.advanceTimersToNextTimerAsync();
    quiet = 0;
    if (++jumps > 1000) throw new Error('the run keeps waiting');
  }
  return work;
}
