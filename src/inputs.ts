import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { MigrationError } from './errors.js';
import { formatHostSpec, parseHostSpec } from './host/host-spec.js';
import { composeRecordName, parseUnitRef, type UnitRef } from './policy/compose-unit.js';
import { ROUTES } from './policy/direct-route.js';
import { parseSelection } from './policy/selection.js';
import {
  COMPRESSIONS,
  type Compression,
  type HostLocation,
  KERNEL_POLICIES,
  type KernelPolicy,
  MEMORY_MODES,
  MODES,
  type Settings,
  SOURCE_AFTER,
  type SourceAfter,
} from './settings.js';
import { SERIES_ID } from './state/series.js';

export type InputReader = (name: string) => string;

/** Every input action.yml declares; each is read exactly once. */
export const INPUT_NAMES = [
  'mode',
  'container',
  'source',
  'target',
  'ssh-key',
  'ssh-key-path',
  'ssh-passphrase',
  'known-hosts',
  'insecure-skip-host-key-check',
  'jump-host',
  'sudo',
  'checkpoint-name',
  'verify-log-pattern',
  'verify-timeout',
  'verify-stable-seconds',
  'verify-show-logs',
  'source-after',
  'timeout',
  'upload-artifact',
  'artifact-name',
  'kernel-policy',
  'compression',
  'memory',
  'route',
  'stream-stall-seconds',
  'strict',
  'store-host',
  'store-path',
  'retention',
  'leave-running',
  'replace',
  'artifact-retention-days',
  'volume-precopy',
  'volume-replace',
  'volume-use-target-options',
  'docker28-network-holder',
  'series',
  'selection',
  'unit',
] as const;

export type InputName = (typeof INPUT_NAMES)[number];

const DEFAULT_VERIFY_TIMEOUT_SECONDS = 30;
const DEFAULT_VERIFY_STABLE_SECONDS = 5;
/** A stream between the hosts with no byte moving for this long is given up (relay and direct). */
export const DEFAULT_STREAM_STALL_SECONDS = 120;
const DEFAULT_TIMEOUT_MINUTES = 30;
// Node timers overflow past 2^31-1 ms; the run timeout must fit in one.
const MAX_TIMEOUT_MINUTES = Math.floor((2 ** 31 - 1) / 60_000);
const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LATEST = 'latest';
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]+$/;
const CONTAINER_ID = /^[0-9a-f]{1,64}$/;
// Characters the artifact service rejects in names.
const ARTIFACT_NAME_FORBIDDEN = /[":<>|*?\\/\r\n]/;

function invalid(input: string, why: string, remedy: string): MigrationError {
  return new MigrationError('INPUT_INVALID', `${input}: ${why}`, { step: 'inputs', remedy });
}

/** Reads and validates every input; throws a MigrationError naming the input at the first problem. */
export function getInputs(
  read: InputReader,
  now: () => Date = () => new Date(),
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Settings {
  const values = new Map(INPUT_NAMES.map((name) => [name, read(name)] as const));
  // Secrets keep their exact text; everything else is compared trimmed.
  const raw = (name: InputName): string => values.get(name) ?? '';
  const text = (name: InputName): string => raw(name).trim();

  const mode = parseChoice('mode', text('mode'), MODES, 'migrate', 'modes');

  const selectionText = text('selection');
  const selection = selectionText === '' ? undefined : parseSelection(selectionText);
  if (selection && mode !== 'preflight') {
    throw invalid(
      'selection',
      `works in preflight mode only, not in ${mode} mode`,
      'gate the selection with mode: preflight, then move each unit of its matrix output in a run of its own (examples/workflows/evacuate.yml)',
    );
  }
  if (selection && text('container') !== '') {
    throw invalid(
      'selection',
      'and container are both set',
      'set one: container for one container, selection for several',
    );
  }
  const unit = parseUnitInput(mode, text('unit'), text('container'));
  // A selection's records are named after the selection, not one container; a compose
  // unit's after its project. List mode reads the whole store when no container is named.
  const container = selection
    ? 'selection'
    : unit?.kind === 'compose'
      ? composeRecordName(unit.project)
      : unit?.kind === 'container'
        ? parseContainer(unit.name)
        : mode === 'list' && text('container') === ''
          ? ''
          : parseContainer(text('container'));
  const source = parseLocation('source', text('source') || 'local');
  const targetText = text('target');
  const target = targetText === '' ? undefined : parseLocation('target', targetText);
  if (
    target === undefined &&
    (mode === 'migrate' || mode === 'preflight' || mode === 'restore' || mode === 'drill')
  ) {
    throw invalid(
      'target',
      `is required in ${mode} mode`,
      'set target to the destination host as [user@]host[:port] (IPv6 in brackets), or local for the runner itself',
    );
  }
  if (target && (mode === 'migrate' || mode === 'preflight') && sameHost(source, target)) {
    throw invalid(
      'target',
      `"${targetText}" is the same host as source; a container cannot be migrated onto the Docker daemon it runs on`,
      'point target at a different host than source',
    );
  }

  const jumpText = text('jump-host');
  const jumpHost = jumpText === '' ? undefined : parseHostSpec(jumpText, 'jump-host');

  const storeText = text('store-host');
  const storeHost = storeText === '' ? source : parseLocation('store-host', storeText);
  const usesStore = mode === 'checkpoint' || mode === 'restore' || mode === 'drill' || mode === 'list';
  const sshHosts = [source, target, usesStore ? storeHost : undefined].flatMap((location) =>
    location?.kind === 'ssh' ? [location.spec] : [],
  );
  const needsSsh = sshHosts.length > 0;
  if (jumpHost) sshHosts.push(jumpHost);

  const passphrase = raw('ssh-passphrase') === '' ? undefined : raw('ssh-passphrase');
  const privateKey = readPrivateKey(raw('ssh-key'), text('ssh-key-path'), passphrase, readFile);
  if (needsSsh && privateKey === undefined) {
    throw new MigrationError(
      'SSH_KEY_MISSING',
      `ssh-key: no private key given, but ${describeSshHosts(source, target)} reached over SSH`,
      {
        step: 'inputs',
        remedy:
          'pass the private key text in ssh-key (for example from secrets.SSH_KEY) or a file on the runner in ssh-key-path',
      },
    );
  }

  const insecureSkipHostKeyCheck = parseBoolean(
    'insecure-skip-host-key-check',
    text('insecure-skip-host-key-check'),
    false,
  );
  const knownHosts = parseKnownHosts(raw('known-hosts'));
  if (needsSsh && knownHosts === '' && !insecureSkipHostKeyCheck) {
    const scans = sshHosts.map((spec) => `ssh-keyscan -p ${spec.port} ${spec.host}`).join('; ');
    throw invalid(
      'known-hosts',
      `is empty, but the host keys of ${sshHosts.map(formatHostSpec).join(', ')} must be verified before connecting`,
      `collect the host keys from a network you trust (${scans}), check their fingerprints, and pass the lines in known-hosts (for example from a secret); insecure-skip-host-key-check: true is only for throwaway labs`,
    );
  }

  const sudo = parseBoolean('sudo', text('sudo'), false);

  // "latest" asks restore mode for the newest complete checkpoint, so no checkpoint may carry that name.
  const named = text('checkpoint-name');
  const restoreLatest = (mode === 'restore' || mode === 'drill') && named === LATEST;
  if (mode === 'checkpoint' && named === LATEST) {
    throw invalid(
      'checkpoint-name',
      `"${LATEST}" is reserved: restore mode reads it as the newest checkpoint`,
      'choose another name, or leave it empty for <container>-<UTC timestamp>',
    );
  }
  const checkpointName = parseCheckpointName(
    restoreLatest || mode === 'list' ? '' : named,
    container || 'store',
    now,
  );

  const verifyLogPattern = parsePattern(raw('verify-log-pattern'));
  const verifyTimeoutSeconds = parsePositiveInteger(
    'verify-timeout',
    text('verify-timeout'),
    DEFAULT_VERIFY_TIMEOUT_SECONDS,
    'seconds',
    MAX_TIMEOUT_MINUTES * 60,
  );
  const verifyStableSeconds = parsePositiveInteger(
    'verify-stable-seconds',
    text('verify-stable-seconds'),
    DEFAULT_VERIFY_STABLE_SECONDS,
    'seconds',
    MAX_TIMEOUT_MINUTES * 60,
  );
  const sourceAfter: SourceAfter = parseChoice(
    'source-after',
    text('source-after'),
    SOURCE_AFTER,
    'stop',
    'values',
  );
  const timeoutMinutes = parsePositiveInteger(
    'timeout',
    text('timeout'),
    DEFAULT_TIMEOUT_MINUTES,
    'minutes',
    MAX_TIMEOUT_MINUTES,
  );
  if (verifyTimeoutSeconds > timeoutMinutes * 60) {
    throw invalid(
      'verify-timeout',
      `${verifyTimeoutSeconds} seconds is longer than the whole run may take (timeout: ${timeoutMinutes} minutes)`,
      'lower verify-timeout or raise timeout',
    );
  }

  const uploadArtifact = parseBoolean('upload-artifact', text('upload-artifact'), true);
  const artifactName = parseArtifactName(text('artifact-name'), checkpointName);
  const kernelPolicy: KernelPolicy = parseChoice(
    'kernel-policy',
    text('kernel-policy'),
    KERNEL_POLICIES,
    'same-minor',
    'policies',
  );
  const strict = parseBoolean('strict', text('strict'), false);
  if (strict && insecureSkipHostKeyCheck && mode !== 'preflight') {
    // Preflight reports it as a failed check instead, beside everything else it finds.
    throw invalid(
      'insecure-skip-host-key-check',
      `is true, which strict: true does not allow in ${mode} mode: the container's memory would go to hosts whose identity was never checked`,
      "pass the hosts' known_hosts lines in known-hosts and set insecure-skip-host-key-check: false, or drop strict",
    );
  }
  const networkHolder = parseBoolean('docker28-network-holder', text('docker28-network-holder'), false);
  const compression: Compression = parseChoice(
    'compression',
    text('compression'),
    COMPRESSIONS,
    'auto',
    'choices',
  );

  const ssh: Settings['ssh'] = { knownHosts, insecureSkipHostKeyCheck };
  if (privateKey !== undefined) ssh.privateKey = privateKey;
  if (passphrase !== undefined) ssh.passphrase = passphrase;
  if (jumpHost) ssh.jumpHost = jumpHost;
  const retentionDays = text('artifact-retention-days');
  const common = {
    ...(retentionDays === ''
      ? {}
      : {
          artifactRetentionDays: parsePositiveInteger(
            'artifact-retention-days',
            retentionDays,
            90,
            'days',
            90,
          ),
        }),
    container,
    source,
    ssh,
    sudo,
    checkpointName,
    timeoutMinutes,
    uploadArtifact,
    artifactName,
    kernelPolicy,
    strict,
    compression,
    volumePrecopy: parseBoolean('volume-precopy', text('volume-precopy'), true),
    volumeReplace: parseBoolean('volume-replace', text('volume-replace'), false),
    volumeUseTargetOptions: parseBoolean(
      'volume-use-target-options',
      text('volume-use-target-options'),
      false,
    ),
    networkHolder,
  };
  const verifying = {
    verifyTimeoutSeconds,
    verifyStableSeconds,
    verifyShowLogs: parseBoolean('verify-show-logs', text('verify-show-logs'), false),
    ...(verifyLogPattern ? { verifyLogPattern } : {}),
  };
  const store = { host: storeHost, path: parseStorePath(text('store-path')) };
  switch (mode) {
    case 'migrate':
      return {
        mode,
        ...common,
        ...verifying,
        target: need(target),
        sourceAfter,
        memory: parseChoice('memory', text('memory'), MEMORY_MODES, 'eager', 'choices'),
        route: parseChoice('route', text('route'), ROUTES, 'auto', 'choices'),
        streamStallSeconds: parsePositiveInteger(
          'stream-stall-seconds',
          text('stream-stall-seconds'),
          DEFAULT_STREAM_STALL_SECONDS,
          'seconds',
          MAX_TIMEOUT_MINUTES * 60,
        ),
        ...(unit?.kind === 'compose' ? { compose: { project: unit.project } } : {}),
      };
    case 'preflight':
      return {
        mode,
        ...common,
        target: need(target),
        memory: parseChoice('memory', text('memory'), MEMORY_MODES, 'eager', 'choices'),
        route: parseChoice('route', text('route'), ROUTES, 'auto', 'choices'),
        ...(selection ? { selection } : {}),
      };
    case 'checkpoint':
      // A unit stopped member by member after its commit would leave a half-stopped project on any failure.
      if (unit?.kind === 'compose' && !parseBoolean('leave-running', text('leave-running'), true)) {
        throw invalid(
          'leave-running',
          'false is not supported for a compose unit',
          'checkpoint the unit with leave-running: true, then stop the project yourself (docker compose -p <project> stop)',
        );
      }
      return {
        mode,
        ...common,
        store,
        retention: parseCount('retention', text('retention'), DEFAULT_RETENTION),
        leaveRunning: parseBoolean('leave-running', text('leave-running'), true),
        ...(unit?.kind === 'compose' ? { compose: { project: unit.project } } : {}),
        route: parseChoice('route', text('route'), ROUTES, 'auto', 'choices'),
      };
    case 'restore': {
      const settings: Settings = {
        mode,
        ...common,
        ...verifying,
        target: need(target),
        store,
        replace: parseBoolean('replace', text('replace'), false),
        ...(unit?.kind === 'compose' ? { compose: { project: unit.project } } : {}),
        route: parseChoice('route', text('route'), ROUTES, 'auto', 'choices'),
      };
      if (named !== '' && !restoreLatest) settings.restoreFrom = checkpointName;
      const series = parseSeries(text('series'));
      if (series) settings.series = series;
      return settings;
    }
    case 'drill': {
      const settings: Settings = {
        mode,
        ...common,
        ...verifying,
        target: need(target),
        store,
        route: parseChoice('route', text('route'), ROUTES, 'auto', 'choices'),
      };
      if (named !== '' && !restoreLatest) settings.restoreFrom = checkpointName;
      const series = parseSeries(text('series'));
      if (series) settings.series = series;
      return settings;
    }
    case 'list': {
      const series = parseSeries(text('series'));
      return { mode, ...common, store, ...(series ? { series } : {}) };
    }
  }
}

function parseSeries(series: string): string | undefined {
  if (series === '') return undefined;
  if (!SERIES_ID.test(series)) {
    throw invalid(
      'series',
      `"${series}" is not a series ID`,
      'use the ID a checkpoint run printed (its series output), for example the 12-character short ID of the container that started it',
    );
  }
  return series;
}

function need(target: HostLocation | undefined): HostLocation {
  // getInputs has already refused a missing target for the modes that call this.
  if (!target) throw new Error('target is required');
  return target;
}

const DEFAULT_STORE_PATH = '/var/lib/criu-migrate/checkpoints';
const DEFAULT_RETENTION = 3;

function parseStorePath(value: string): string {
  if (value === '') return DEFAULT_STORE_PATH;
  const path = value.replace(/\/+$/, '');
  if (!path.startsWith('/') || path.split('/').includes('..') || /[\0\n]/.test(path) || path === '') {
    throw invalid(
      'store-path',
      `"${value}" is not an absolute path without ".."`,
      'set store-path to an absolute directory such as /var/lib/criu-migrate/checkpoints, or leave it empty',
    );
  }
  return path;
}

function parseCount(input: InputName, value: string, fallback: number): number {
  if (value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) > 10_000) {
    throw invalid(
      input,
      `"${value}" is not a whole number from 0 to 10000`,
      `set ${input} to a whole number (0 keeps all), or leave it empty for ${fallback}`,
    );
  }
  return Number(value);
}

/** Values to hand to core.setSecret. Multi-line secrets are also masked line by line, since logs are. */
export function secretsToMask(settings: Settings): string[] {
  const secrets: string[] = [];
  const key = settings.ssh.privateKey;
  if (key) {
    secrets.push(key);
    for (const line of key.split('\n')) {
      const body = line.trim();
      if (body.length >= 8 && /^[A-Za-z0-9+/=]+$/.test(body)) secrets.push(body);
    }
  }
  if (settings.ssh.passphrase) secrets.push(settings.ssh.passphrase);
  return [...new Set(secrets)];
}

function parseChoice<T extends string>(
  input: InputName,
  value: string,
  allowed: readonly T[],
  fallback: T,
  noun: string,
): T {
  if (value === '') return fallback;
  const lower = value.toLowerCase();
  const found = allowed.find((choice) => choice === lower);
  if (found === undefined) {
    throw invalid(
      input,
      `"${value}" is not one of the valid ${noun}: ${allowed.join(', ')}`,
      `set ${input} to one of ${allowed.join(', ')}, or leave it empty for ${fallback}`,
    );
  }
  return found;
}

function parseBoolean(input: InputName, value: string, fallback: boolean): boolean {
  if (value === '') return fallback;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === 'yes') return true;
  if (lower === 'false' || lower === 'no') return false;
  throw invalid(input, `"${value}" is not a boolean`, `set ${input} to true or false (yes and no also work)`);
}

function parsePositiveInteger(
  input: InputName,
  value: string,
  fallback: number,
  unit: string,
  max: number,
): number {
  if (value === '') return fallback;
  const remedy = `set ${input} to a whole number of ${unit} from 1 to ${max}, or leave it empty for ${fallback}`;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw invalid(input, `"${value}" is not a whole number of ${unit} (1 or more)`, remedy);
  }
  const n = Number(value);
  if (n > max) throw invalid(input, `${value} ${unit} is more than the maximum of ${max}`, remedy);
  return n;
}

/** The unit input (a matrix entry of the cutover gate): compose:<project>, or one container's name. */
function parseUnitInput(mode: string, value: string, container: string): UnitRef | undefined {
  if (value === '') return undefined;
  if (container !== '') {
    throw invalid(
      'unit',
      'and container are both set',
      'set one: unit (a matrix entry of the gate) or container',
    );
  }
  const ref = parseUnitRef(value);
  if (ref.kind === 'compose' && mode !== 'migrate' && mode !== 'checkpoint' && mode !== 'restore') {
    throw invalid(
      'unit',
      `a compose project moves as one unit in migrate, checkpoint and restore modes only, not in ${mode} mode`,
      mode === 'drill'
        ? 'drill one member: restore-from its member checkpoint (listed in the unit record), with container set to the member'
        : 'use mode: migrate, checkpoint or restore for compose:<project>, or name one container',
    );
  }
  return ref;
}

function parseContainer(value: string): string {
  if (value === '') {
    throw invalid(
      'container',
      'is required',
      'set container to the name or ID of the running container on the source host',
    );
  }
  // docker inspect reports names with a leading slash; accept that form too.
  const name = value.startsWith('/') ? value.slice(1) : value;
  if (!CONTAINER_NAME.test(name) && !CONTAINER_ID.test(name)) {
    throw invalid(
      'container',
      `"${value}" is neither a Docker container name nor an ID`,
      'use the name or ID shown by docker ps: names are letters, digits, "_", "." and "-", starting with a letter or digit; IDs are hexadecimal',
    );
  }
  return name;
}

function parseLocation(input: 'source' | 'target' | 'store-host', value: string): HostLocation {
  if (value.toLowerCase() === 'local') return { kind: 'local' };
  return { kind: 'ssh', spec: parseHostSpec(value, input) };
}

function sameHost(a: HostLocation, b: HostLocation): boolean {
  if (a.kind === 'local' || b.kind === 'local') return a.kind === b.kind;
  return a.spec.host.toLowerCase() === b.spec.host.toLowerCase() && a.spec.port === b.spec.port;
}

function describeSshHosts(source: HostLocation, target: HostLocation | undefined): string {
  const names: string[] = [];
  if (source.kind === 'ssh') names.push(`source ${formatHostSpec(source.spec)}`);
  if (target?.kind === 'ssh') names.push(`target ${formatHostSpec(target.spec)}`);
  return names.length === 1 ? `${names[0]} is` : `${names.join(' and ')} are`;
}

function parseCheckpointName(value: string, container: string, now: () => Date): string {
  if (value === '') {
    // Milliseconds: two runs in one second (two hosts, one store) still get two names.
    const stamp = now()
      .toISOString()
      .replace(/\.(\d+)Z$/, '$1Z')
      .replace(/[-:]/g, '');
    const suffix = `-${stamp}`;
    const base = container.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128 - suffix.length);
    return `${base}${suffix}`;
  }
  if (!CHECKPOINT_NAME.test(value)) {
    const why = /[/\\]/.test(value)
      ? `"${value}" is a path; it must be a bare name`
      : `"${value}" is not a valid name`;
    throw invalid(
      'checkpoint-name',
      why,
      'use 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit, or leave it empty for <container>-<UTC timestamp>',
    );
  }
  return value;
}

function parseArtifactName(value: string, checkpointName: string): string {
  if (value === '') return `criu-migration-${checkpointName}`;
  if (ARTIFACT_NAME_FORBIDDEN.test(value)) {
    throw invalid(
      'artifact-name',
      `"${value}" contains a character artifact names cannot have (one of " : < > | * ? \\ / or a line break)`,
      'remove those characters, or leave artifact-name empty for criu-migration-<checkpoint-name>',
    );
  }
  return value;
}

function parsePattern(value: string): RegExp | undefined {
  if (value.trim() === '') return undefined;
  try {
    return new RegExp(value);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw invalid(
      'verify-log-pattern',
      `is not a valid JavaScript regular expression: ${why}`,
      'fix the expression (escape literal characters such as ( [ . * + ? with a backslash), or leave it empty to skip the log check',
    );
  }
}

function readPrivateKey(
  keyText: string,
  keyPath: string,
  passphrase: string | undefined,
  readFile: (path: string) => string,
): string | undefined {
  const hasText = keyText.trim() !== '';
  if (hasText && keyPath !== '') {
    throw invalid(
      'ssh-key-path',
      'is set together with ssh-key; only one key can be used',
      'keep either ssh-key (the key text) or ssh-key-path (a file on the runner), not both',
    );
  }
  if (hasText) return checkPrivateKey(keyText, 'ssh-key', passphrase);
  if (keyPath === '') return undefined;
  const path = keyPath === '~' || keyPath.startsWith('~/') ? homedir() + keyPath.slice(1) : keyPath;
  let content: string;
  try {
    content = readFile(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw invalid(
      'ssh-key-path',
      `cannot read "${keyPath}": ${why}`,
      'give the path of a readable private key file on the runner (write it in an earlier step), or pass the key text in ssh-key',
    );
  }
  if (content.trim() === '') {
    throw invalid(
      'ssh-key-path',
      `"${keyPath}" is empty`,
      'write the private key into that file first, or pass the key text in ssh-key',
    );
  }
  return checkPrivateKey(content, 'ssh-key-path', passphrase);
}

const PEM_PRIVATE_KEY =
  /^-----BEGIN (OPENSSH|RSA|EC|DSA) PRIVATE KEY-----\n([\s\S]+?)\n-----END (OPENSSH|RSA|EC|DSA) PRIVATE KEY-----$/;

/** Structural check only (the key is parsed when connecting); never echoes key text. */
function checkPrivateKey(content: string, input: 'ssh-key' | 'ssh-key-path', passphrase?: string): string {
  const key = content.replace(/\r\n?/g, '\n').trim();
  const bad = (why: string, remedy: string): MigrationError => invalid(input, why, remedy);
  const generate = 'create a key with ssh-keygen -t ed25519 and authorize its .pub on the hosts';
  if (!key.includes('\n') && key.includes('\\n')) {
    throw bad(
      'holds literal "\\n" sequences instead of line breaks',
      'store the key file as it is, with its real line breaks (for example gh secret set SSH_KEY < ~/.ssh/id_ed25519)',
    );
  }
  if (
    /^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(key) ||
    /-----BEGIN (SSH2 |RSA )?PUBLIC KEY-----/.test(key)
  ) {
    throw bad(
      'holds a public key, not a private key',
      'pass the private key (the file without .pub, starting with -----BEGIN OPENSSH PRIVATE KEY-----)',
    );
  }
  if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(key)) {
    throw bad(
      'holds a PKCS#8 key ("BEGIN PRIVATE KEY"), which the SSH library cannot read',
      `convert an RSA or ECDSA key with openssl pkey -in KEY -traditional, or ${generate}`,
    );
  }
  if (key.startsWith('PuTTY-User-Key-File-')) {
    if (/^Encryption:\s*(?!none\s*$)\S/m.test(key) && passphrase === undefined) failNoPassphrase(input);
    return `${key}\n`;
  }
  const match = PEM_PRIVATE_KEY.exec(key);
  if (!match) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      if (!/-----END [A-Z ]*PRIVATE KEY-----/.test(key)) {
        throw bad('is cut off: the -----END ... PRIVATE KEY----- line is missing', 'copy the whole key file');
      }
      throw bad(
        'has text before or after the key block, or mismatched BEGIN and END lines',
        'pass only the key file content, from the -----BEGIN line to the -----END line',
      );
    }
    throw bad(
      'does not look like a private key',
      `pass an OpenSSH private key (starting with -----BEGIN OPENSSH PRIVATE KEY-----), or ${generate}`,
    );
  }
  const [, kind, body = '', endKind] = match;
  if (kind !== endKind) {
    throw bad('has mismatched BEGIN and END lines', 'copy the whole key file unchanged');
  }
  if (kind === 'OPENSSH') {
    const cipher = openSshCipher(body);
    if (cipher === undefined) {
      throw bad('is damaged: its body is not an openssh-key-v1 key', 'copy the whole key file unchanged');
    }
    if (cipher !== 'none' && passphrase === undefined) failNoPassphrase(input);
  } else if (/^Proc-Type:\s*4,ENCRYPTED/m.test(body) && passphrase === undefined) {
    failNoPassphrase(input);
  }
  return `${key}\n`;
}

function failNoPassphrase(input: 'ssh-key' | 'ssh-key-path'): never {
  throw invalid(
    'ssh-passphrase',
    `the key in ${input} is encrypted, but ssh-passphrase is empty`,
    'pass the key passphrase in ssh-passphrase (from a secret), or use a key without one',
  );
}

/** Cipher name from an openssh-key-v1 body, or undefined if the body is not one. */
function openSshCipher(body: string): string | undefined {
  const data = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (data.length < magic.length + 4 || data.toString('latin1', 0, magic.length) !== magic) return undefined;
  const length = data.readUInt32BE(magic.length);
  const start = magic.length + 4;
  if (length > 64 || start + length > data.length) return undefined;
  return data.toString('latin1', start, start + length);
}

const KNOWN_HOSTS_KEY = /^[A-Za-z0-9+/]+={0,2}$/;
const KEY_TYPE = /^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/;

/** Checks the lines' shape; matching them against hosts happens when connecting. */
function parseKnownHosts(value: string): string {
  const text = value.replace(/\r\n?/g, '\n').trim();
  if (text === '') return '';
  const remedy =
    'pass known_hosts lines ("host key-type base64-key"), for example the output of ssh-keyscan -p PORT HOST, checked against the host\'s real fingerprint';
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const entry = line.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const fields = entry.split(/\s+/);
    if (fields[0]?.startsWith('@')) fields.shift();
    const where = `line ${index + 1}`;
    if (fields.length === 1 && /[/~]/.test(entry)) {
      throw invalid(
        'known-hosts',
        `${where} looks like a file path; known-hosts takes the lines themselves`,
        'pass the content of the file, for example from secrets.KNOWN_HOSTS',
      );
    }
    if (KEY_TYPE.test(fields[0] ?? '') && KNOWN_HOSTS_KEY.test(fields[1] ?? '')) {
      throw invalid(
        'known-hosts',
        `${where} is a bare public key without the host it belongs to`,
        'put the host first ("host key-type base64-key"), as ssh-keyscan -p PORT HOST prints it',
      );
    }
    if (fields.length < 3 || !KEY_TYPE.test(fields[1] ?? '') || !KNOWN_HOSTS_KEY.test(fields[2] ?? '')) {
      throw invalid('known-hosts', `${where} is not a known_hosts entry`, remedy);
    }
  });
  return `${text}\n`;
}
