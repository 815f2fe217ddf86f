import { MigrationError } from '../../errors.js';
import { shellQuote } from '../../host/shell.js';
import type {
  ContainerConfig,
  ContainerInspect,
  HealthConfig,
  ImageConfig,
  MountSpec,
  PortBinding,
} from './inspect.js';
import type { HolderNeeds } from './net-holder.js';

/** runc reads this annotation of a container and hands the file it names to CRIU. */
export const CRIU_CONFIG_ANNOTATION = 'org.criu.config';

export interface CreateArgsOptions {
  /** Name of the container to create. */
  name: string;
  /** Image reference or ID for the positional image argument. */
  image: string;
  /**
   * The image's own Config (docker image inspect). When given, settings the container merely
   * inherited from the image are left to the image; without it they are all spelled out,
   * which creates the same container with a longer command line.
   */
  imageConfig?: ImageConfig;
  /**
   * Join this container's network namespace (a network holder) instead of recreating the
   * network: the hostname, ports, networks, aliases and DNS settings are the holder's then.
   */
  networkContainer?: string;
  /** OCI annotations for the runtime (the restore's CRIU configuration file: org.criu.config). */
  annotations?: Readonly<Record<string, string>>;
  /**
   * The current address on a user network even when Docker assigned it (a member of a compose
   * unit: its peers and CRIU's sockets bound to it expect the same address on the target).
   */
  keepAddresses?: boolean;
}

// Docker's defaults, which an inspect shows even when nobody asked for them.
const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
const DEFAULT_NETWORK_MODES = new Set(['', 'default', 'bridge']);
const DEFAULT_IPC_MODES = new Set(['', 'private']);
const DEFAULT_LOG_DRIVER = 'json-file';
const DEFAULT_RUNTIME = 'runc';
const DEFAULT_DEVICE_PERMISSIONS = 'rwm';

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sortedEntries(map: Record<string, string> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function sharesNamespace(mode: string | undefined): boolean {
  return mode?.startsWith('container:') ?? false;
}

/** "30s", "1500ms": Go duration text for a nanosecond count, as --health-* flags take it. */
export function formatDuration(nanoseconds: number): string {
  const units: [number, string][] = [
    [1e9, 's'],
    [1e6, 'ms'],
    [1e3, 'us'],
  ];
  for (const [size, unit] of units) {
    if (nanoseconds % size === 0) return `${nanoseconds / size}${unit}`;
  }
  return `${nanoseconds}ns`;
}

/** "1.5" for 1500000000 NanoCpus. */
export function formatCpus(nanoCpus: number): string {
  return String(nanoCpus / 1e9);
}

/** One -p value: [ip:][hostPort:]containerPort[/proto], IPv6 hosts in brackets. */
export function formatPublish(port: string, binding: PortBinding): string {
  const [containerPort, proto = 'tcp'] = port.split('/');
  const target = proto === 'tcp' ? `${containerPort}` : `${containerPort}/${proto}`;
  const ip = binding.HostIp ?? '';
  const hostPort = binding.HostPort ?? '';
  if (ip === '') return hostPort === '' ? target : `${hostPort}:${target}`;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `${host}:${hostPort}:${target}`;
}

/** A --mount value is CSV: quote fields holding commas or quotes. */
function csvField(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

const RECURSIVE_MODES: [keyof NonNullable<MountSpec['BindOptions']>, string][] = [
  ['NonRecursive', 'disabled'],
  ['ReadOnlyNonRecursive', 'writable'],
  ['ReadOnlyForceRecursive', 'readonly'],
];

/** The --mount value for one HostConfig.Mounts entry; undefined for types the CLI cannot create. */
export function formatMount(mount: MountSpec): string | undefined {
  if (mount.Type !== 'bind' && mount.Type !== 'volume' && mount.Type !== 'tmpfs') return undefined;
  const fields = [`type=${mount.Type}`];
  if (mount.Source) fields.push(`source=${mount.Source}`);
  fields.push(`target=${mount.Target}`);
  if (mount.ReadOnly) fields.push('readonly');
  const bind = mount.BindOptions;
  if (mount.Type === 'bind' && bind) {
    if (bind.Propagation) fields.push(`bind-propagation=${bind.Propagation}`);
    const recursive = RECURSIVE_MODES.find(([key]) => bind[key] === true);
    if (recursive) fields.push(`bind-recursive=${recursive[1]}`);
  }
  const volume = mount.VolumeOptions;
  if (mount.Type === 'volume' && volume) {
    if (volume.NoCopy) fields.push('volume-nocopy');
    if (volume.Subpath) fields.push(`volume-subpath=${volume.Subpath}`);
    if (volume.DriverConfig?.Name) fields.push(`volume-driver=${volume.DriverConfig.Name}`);
    for (const [key, value] of sortedEntries(volume.DriverConfig?.Options))
      fields.push(`volume-opt=${key}=${value}`);
    for (const [key, value] of sortedEntries(volume.Labels)) fields.push(`volume-label=${key}=${value}`);
  }
  const tmpfs = mount.TmpfsOptions;
  if (mount.Type === 'tmpfs' && tmpfs) {
    if (tmpfs.SizeBytes) fields.push(`tmpfs-size=${tmpfs.SizeBytes}`);
    if (tmpfs.Mode) fields.push(`tmpfs-mode=${tmpfs.Mode.toString(8)}`);
  }
  return fields.map(csvField).join(',');
}

/** Container paths that Binds and Mounts already cover (an anonymous -v there would clash). */
function mountedPaths(inspect: ContainerInspect): Set<string> {
  const paths = new Set<string>();
  for (const bind of inspect.HostConfig.Binds ?? []) {
    const target = bind.split(':')[1];
    if (target) paths.add(target);
  }
  for (const mount of inspect.HostConfig.Mounts ?? []) paths.add(mount.Target);
  for (const path of Object.keys(inspect.HostConfig.Tmpfs ?? {})) paths.add(path);
  return paths;
}

function isInlineSeccompProfile(option: string): boolean {
  // The CLI reads a profile file and stores its JSON; passing that back would be read as a file name.
  return /^seccomp[=:]\s*\{/.test(option);
}

/** Networks besides the primary one (NetworkMode), which `docker network connect` added. */
function extraNetworks(inspect: ContainerInspect): string[] {
  const primary = inspect.HostConfig.NetworkMode ?? 'default';
  // Joined to another container's namespace, the endpoints listed are that container's.
  if (sharesNamespace(primary)) return [];
  return Object.keys(inspect.NetworkSettings.Networks).filter(
    (name) => name !== primary && !(DEFAULT_NETWORK_MODES.has(primary) && DEFAULT_NETWORK_MODES.has(name)),
  );
}

function userAliases(inspect: ContainerInspect, network: string, newName: string): string[] {
  const shortId = inspect.Id.slice(0, 12);
  // Docker before API 1.45 listed the short ID among the aliases itself; the new name is automatic.
  return (inspect.NetworkSettings.Networks[network]?.Aliases ?? []).filter(
    (alias) => alias !== shortId && alias !== inspect.Id && alias !== newName,
  );
}

function namespaceError(setting: string, mode: string): MigrationError {
  return new MigrationError(
    'CONTAINER_SHARES_NAMESPACE',
    `${setting} is "${mode}": the container shares another container's namespace`,
    {
      remedy:
        "a container that joins another container's namespace cannot move on its own; recreate it with its own namespace first",
    },
  );
}

/**
 * Entrypoint and Cmd as flags and positional arguments. `--entrypoint` takes one word, so the
 * rest of a longer entrypoint goes in front of Cmd: the process gets the same argv.
 */
function commandParts(
  config: ContainerConfig,
  image: ImageConfig | undefined,
): { flags: string[]; positional: string[] } {
  // Docker turns an explicit empty entrypoint ([""]) into none when it creates the container.
  const given = config.Entrypoint ?? [];
  const entrypoint = given.length === 1 && given[0] === '' ? [] : given;
  const cmd = config.Cmd ?? [];
  if (image) {
    const imageEntrypoint = image.Entrypoint ?? [];
    if (sameList(entrypoint, imageEntrypoint)) {
      if (sameList(cmd, image.Cmd)) return { flags: [], positional: [] };
      // An empty Cmd here would let Docker take the image's; only an explicit entrypoint prevents that.
      if (cmd.length > 0) return { flags: [], positional: cmd };
    }
  }
  const [first, ...rest] = entrypoint;
  // Without one, an explicit empty entrypoint keeps an image ENTRYPOINT from coming back.
  if (first === undefined) return { flags: ['--entrypoint', ''], positional: cmd };
  return { flags: ['--entrypoint', first], positional: [...rest, ...cmd] };
}

function sameHealth(a: HealthConfig | undefined, b: HealthConfig | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    sameList(a.Test, b.Test) &&
    (a.Interval ?? 0) === (b.Interval ?? 0) &&
    (a.Timeout ?? 0) === (b.Timeout ?? 0) &&
    (a.StartPeriod ?? 0) === (b.StartPeriod ?? 0) &&
    (a.StartInterval ?? 0) === (b.StartInterval ?? 0) &&
    (a.Retries ?? 0) === (b.Retries ?? 0)
  );
}

function healthArgs(health: HealthConfig | undefined, image: ImageConfig | undefined): string[] {
  if (!health || (image && sameHealth(health, image.Healthcheck))) return [];
  const test = health.Test ?? [];
  if (test[0] === 'NONE') return ['--no-healthcheck'];
  const args: string[] = [];
  if (test[0] === 'CMD-SHELL' && test[1] !== undefined) args.push('--health-cmd', test[1]);
  // The CLI has no flag for the exec form. Known to differ from the image's, the shell form is
  // the closest; not known, it most likely is the image's, which comes back by itself.
  else if (test[0] === 'CMD' && test.length > 1 && image)
    args.push('--health-cmd', shellQuote(test.slice(1)));
  else if (test.length > 0) return [];
  const durations: [string, number | undefined][] = [
    ['--health-interval', health.Interval],
    ['--health-timeout', health.Timeout],
    ['--health-start-period', health.StartPeriod],
    ['--health-start-interval', health.StartInterval],
  ];
  for (const [flag, value] of durations) if (value) args.push(flag, formatDuration(value));
  if (health.Retries) args.push('--health-retries', String(health.Retries));
  return args;
}

/** Exposed and published ports; the ports the image exposes itself are left to it. */
function portArgs(inspect: ContainerInspect, image: ImageConfig | undefined): string[] {
  const args: string[] = [];
  const bindings = inspect.HostConfig.PortBindings ?? {};
  const exposed = Object.keys(inspect.Config.ExposedPorts ?? {}).sort();
  for (const port of exposed) {
    const published = (bindings[port]?.length ?? 0) > 0;
    if (!published && !(port in (image?.ExposedPorts ?? {}))) args.push('--expose', port);
  }
  for (const port of Object.keys(bindings).sort()) {
    for (const binding of bindings[port] ?? []) args.push('-p', formatPublish(port, binding));
  }
  if (inspect.HostConfig.PublishAllPorts) args.push('-P');
  return args;
}

/** The primary network with its aliases and addresses, and the DNS settings. */
function networkArgs(
  inspect: ContainerInspect,
  name: string,
  extraAliases: readonly string[] = [],
  keepAddresses = false,
): string[] {
  const args: string[] = [];
  const host = inspect.HostConfig;
  const networkMode = host.NetworkMode ?? 'default';
  const each = (flag: string, values: readonly string[] | undefined) => {
    for (const value of values ?? []) args.push(flag, value);
  };
  if (networkMode === 'host' || networkMode === 'none') args.push('--network', networkMode);
  else if (!DEFAULT_NETWORK_MODES.has(networkMode)) {
    args.push('--network', networkMode);
    const aliases = userAliases(inspect, networkMode, name);
    each('--network-alias', [...aliases, ...extraAliases.filter((alias) => !aliases.includes(alias))]);
    const endpoint = inspect.NetworkSettings.Networks[networkMode];
    const ipam = endpoint?.IPAMConfig;
    const address = ipam?.IPv4Address || (keepAddresses ? endpoint?.IPAddress : undefined);
    if (address) args.push('--ip', address);
    if (ipam?.IPv6Address) args.push('--ip6', ipam.IPv6Address);
    each('--link-local-ip', ipam?.LinkLocalIPs);
  }
  each('--dns', host.Dns);
  each('--dns-search', host.DnsSearch);
  each('--dns-option', host.DnsOptions);
  each('--add-host', host.ExtraHosts);
  return args;
}

export interface HolderArgsOptions {
  /** The holder's name on the target. */
  name: string;
  /** The container it holds the network for (its name is an alias on user networks). */
  app: string;
  image: string;
  label: string;
}

/**
 * `docker create` arguments of a network holder: everything about the network of `owner`
 * (the app container itself, or on a later move the holder it joins), the app's restart
 * policy, and the holder's own program. No environment, mounts or limits: it runs nothing
 * but a pause loop.
 */
export function buildHolderArgs(
  owner: ContainerInspect,
  app: ContainerInspect,
  options: HolderArgsOptions,
): string[] {
  const args = ['--name', options.name, '--label', `${options.label}=${options.app}`];
  const config = owner.Config;
  const mode = owner.HostConfig.NetworkMode ?? 'default';
  if (config.Hostname && mode !== 'host') args.push('--hostname', config.Hostname);
  if (config.Domainname) args.push('--domainname', config.Domainname);
  args.push(...portArgs(owner, undefined));
  args.push(...networkArgs(owner, options.name, [options.app]));
  const restart = app.HostConfig.RestartPolicy;
  if (restart && restart.Name !== '' && restart.Name !== 'no') {
    const retries = restart.Name === 'on-failure' && restart.MaximumRetryCount > 0;
    args.push('--restart', retries ? `on-failure:${restart.MaximumRetryCount}` : restart.Name);
  }
  // Its program ignores every signal but SIGKILL (PID 1 without handlers): stop it with that.
  args.push('--stop-signal', 'SIGKILL', options.image);
  return args;
}

/**
 * The arguments after `docker create` that give a container on another host the source
 * container's configuration: options, then the image, then the command. Values that are
 * Docker's defaults are left out. Throws CONTAINER_SHARES_NAMESPACE for container: modes.
 */
export function buildCreateArgs(inspect: ContainerInspect, options: CreateArgsOptions): string[] {
  const config = inspect.Config;
  const host = inspect.HostConfig;
  const image = options.imageConfig;
  const networkMode = host.NetworkMode ?? 'default';
  for (const [setting, mode] of [
    ['NetworkMode', networkMode],
    ['IpcMode', host.IpcMode],
    ['PidMode', host.PidMode],
  ] as const) {
    // A network holder's namespace is replaced by the holder given in the options.
    if (setting === 'NetworkMode' && options.networkContainer) continue;
    if (mode && sharesNamespace(mode)) throw namespaceError(`HostConfig.${setting}`, mode);
  }

  const args: string[] = ['--name', options.name];
  const add = (flag: string, value?: string | number) => {
    if (value === undefined) args.push(flag);
    else args.push(flag, String(value));
  };
  // The container's own annotations travel; org.criu.config names a file on the source, so
  // the target gets its own (or none) from the options.
  const annotations: Record<string, string> = { ...host.Annotations, ...options.annotations };
  if (!options.annotations?.[CRIU_CONFIG_ANNOTATION]) delete annotations[CRIU_CONFIG_ANNOTATION];
  for (const [key, value] of Object.entries(annotations)) add('--annotation', `${key}=${value}`);
  const addEach = (flag: string, values: readonly string[] | undefined) => {
    for (const value of values ?? []) add(flag, value);
  };

  // The restored process keeps the source's UTS name (CRIU restores it), so the files Docker
  // writes (/etc/hostname, /etc/hosts) must say the same, even for an ID-derived default.
  // With the host's UTS namespace Docker fills in the target host's own name.
  const holder = options.networkContainer;
  const hostUts = networkMode === 'host' || host.UTSMode === 'host';
  if (!holder) {
    if (config.Hostname && !hostUts) add('--hostname', config.Hostname);
    if (config.Domainname) add('--domainname', config.Domainname);
  }
  if (config.User && config.User !== image?.User) add('--user', config.User);
  if (config.WorkingDir && config.WorkingDir !== image?.WorkingDir) add('--workdir', config.WorkingDir);

  const imageEnv = new Set(image?.Env ?? []);
  addEach(
    '--env',
    (config.Env ?? []).filter((entry) => !imageEnv.has(entry)),
  );
  for (const [key, value] of sortedEntries(config.Labels)) {
    if (image?.Labels?.[key] !== value) add('--label', `${key}=${value}`);
  }

  const command = commandParts(config, image);
  args.push(...command.flags);
  if (config.Tty) add('-t');
  if (config.OpenStdin) add('-i');

  if (!holder) args.push(...portArgs(inspect, image));

  const restart = host.RestartPolicy;
  if (restart && restart.Name !== '' && restart.Name !== 'no') {
    const retries = restart.Name === 'on-failure' && restart.MaximumRetryCount > 0;
    add('--restart', retries ? `on-failure:${restart.MaximumRetryCount}` : restart.Name);
  }

  // Binds keep the user's -v text, options included (ro, z/Z, propagation, nocopy).
  addEach('-v', host.Binds);
  for (const mount of host.Mounts ?? []) {
    const value = formatMount(mount);
    if (value !== undefined) add('--mount', value);
  }
  const covered = mountedPaths(inspect);
  for (const path of Object.keys(config.Volumes ?? {}).sort()) {
    // Image VOLUMEs come back by themselves; the others were anonymous -v /path.
    if (!covered.has(path) && !(path in (image?.Volumes ?? {}))) add('-v', path);
  }
  if (host.VolumeDriver) add('--volume-driver', host.VolumeDriver);
  for (const [path, opts] of sortedEntries(host.Tmpfs)) add('--tmpfs', opts ? `${path}:${opts}` : path);

  if (holder) add('--network', `container:${holder}`);
  else args.push(...networkArgs(inspect, options.name, [], options.keepAddresses === true));

  if (host.Privileged) add('--privileged');
  addEach('--cap-add', host.CapAdd);
  addEach('--cap-drop', host.CapDrop);
  addEach(
    '--security-opt',
    (host.SecurityOpt ?? []).filter((option) => !isInlineSeccompProfile(option)),
  );
  if (host.UsernsMode) add('--userns', host.UsernsMode);

  if (host.Memory) add('--memory', host.Memory);
  // Docker stores twice the memory limit as the swap limit when none was given.
  if (host.MemorySwap && !(host.Memory && host.MemorySwap === host.Memory * 2))
    add('--memory-swap', host.MemorySwap);
  if (host.MemoryReservation) add('--memory-reservation', host.MemoryReservation);
  if (host.MemorySwappiness !== undefined && host.MemorySwappiness >= 0) {
    add('--memory-swappiness', host.MemorySwappiness);
  }
  if (host.NanoCpus) add('--cpus', formatCpus(host.NanoCpus));
  if (host.CpuShares) add('--cpu-shares', host.CpuShares);
  if (host.CpuPeriod) add('--cpu-period', host.CpuPeriod);
  if (host.CpuQuota) add('--cpu-quota', host.CpuQuota);
  if (host.CpusetCpus) add('--cpuset-cpus', host.CpusetCpus);
  if (host.CpusetMems) add('--cpuset-mems', host.CpusetMems);
  if (host.BlkioWeight) add('--blkio-weight', host.BlkioWeight);
  if (host.PidsLimit) add('--pids-limit', host.PidsLimit > 0 ? host.PidsLimit : -1);
  for (const ulimit of host.Ulimits ?? []) {
    add(
      '--ulimit',
      `${ulimit.Name}=${ulimit.Soft === ulimit.Hard ? ulimit.Soft : `${ulimit.Soft}:${ulimit.Hard}`}`,
    );
  }
  if (host.ShmSize && host.ShmSize !== DEFAULT_SHM_SIZE) add('--shm-size', host.ShmSize);
  if (host.OomKillDisable) add('--oom-kill-disable');
  if (host.OomScoreAdj) add('--oom-score-adj', host.OomScoreAdj);
  if (host.CgroupParent) add('--cgroup-parent', host.CgroupParent);

  if (host.Init === true) add('--init');
  // false differs from absent when the daemon runs with "init": true.
  if (host.Init === false) add('--init=false');
  if (host.ReadonlyRootfs) add('--read-only');
  for (const [key, value] of sortedEntries(host.Sysctls)) add('--sysctl', `${key}=${value}`);

  const log = host.LogConfig;
  const logOptions = sortedEntries(log?.Config);
  if (log?.Type && (log.Type !== DEFAULT_LOG_DRIVER || logOptions.length > 0)) add('--log-driver', log.Type);
  for (const [key, value] of logOptions) add('--log-opt', `${key}=${value}`);

  if (host.IpcMode && !DEFAULT_IPC_MODES.has(host.IpcMode)) add('--ipc', host.IpcMode);
  if (host.PidMode) add('--pid', host.PidMode);
  if (host.UTSMode) add('--uts', host.UTSMode);
  // Its default follows the host's cgroup version; CRIU must find the same arrangement it dumped.
  if (host.CgroupnsMode) add('--cgroupns', host.CgroupnsMode);

  if (config.StopSignal && config.StopSignal !== image?.StopSignal) add('--stop-signal', config.StopSignal);
  if (config.StopTimeout !== undefined) add('--stop-timeout', config.StopTimeout);
  args.push(...healthArgs(config.Healthcheck, image));

  if (host.Runtime && host.Runtime !== DEFAULT_RUNTIME) add('--runtime', host.Runtime);
  addEach('--group-add', host.GroupAdd);
  for (const device of host.Devices ?? []) {
    const permissions = device.CgroupPermissions && device.CgroupPermissions !== DEFAULT_DEVICE_PERMISSIONS;
    add(
      '--device',
      `${device.PathOnHost}:${device.PathInContainer}${permissions ? `:${device.CgroupPermissions}` : ''}`,
    );
  }
  addEach('--device-cgroup-rule', host.DeviceCgroupRules);
  for (const [key, value] of sortedEntries(host.StorageOpt)) add('--storage-opt', `${key}=${value}`);
  if (host.AutoRemove) add('--rm');

  // "--": nothing from the source's inspect can be taken for an option.
  args.push('--', options.image, ...command.positional);
  return args;
}

/**
 * Takes every --env pair out of create arguments so that all of them go
 * through a 0600 file instead of the command line (process lists, sudo logs),
 * values with line breaks included (see envFileCreate).
 */
export function splitEnvArgs(args: readonly string[]): { args: string[]; env: string[] } {
  const kept: string[] = [];
  const env: string[] = [];
  const end = args.indexOf('--');
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if ((end === -1 || i < end) && args[i] === '--env' && value !== undefined) {
      env.push(value);
      i++;
      continue;
    }
    kept.push(args[i] as string);
  }
  return { args: kept, env };
}

// Docker's env file is line based and has no quoting, but a line that is only a
// name takes that variable's value from the docker CLI's own environment. So a
// value with a line break is put into the CLI's environment (readable by root
// only, in /proc/<pid>/environ), never into an argument. perl is essential on
// Debian and Ubuntu, and sets any name, which sh's export cannot; it is needed
// only when such a value exists.
const ENV_SPLITTER = [
  'my $d = shift @ARGV;',
  'open(my $in, "<", "$d/entries") or exit 125;',
  'open(my $out, ">", "$d/env") or exit 125;',
  'local $/ = "\\0";',
  'while (my $e = <$in>) {',
  '  chomp $e;',
  '  my ($k, $v) = split /=/, $e, 2;',
  '  next unless defined $v && $k ne "";',
  '  if ($v =~ /[\\r\\n]/) { $ENV{$k} = $v; print $out "$k\\n" } else { print $out "$e\\n" }',
  '}',
  'close $out or exit 125;',
  'unlink "$d/entries";',
  'exec { $ARGV[0] } @ARGV or exit 127;',
].join(' ');

/**
 * The shell script that creates a container with `args` (after `docker
 * create`) and `env`, and what it reads on stdin: the environment lands in a
 * 0600 file under `envDir`, which is removed whatever docker create says.
 */
export function envFileCreate(
  envDir: string,
  args: readonly string[],
  env: readonly string[],
  /** Where docker create writes the new container's ID (after --env-file: the faults' hold globs expect that order). */
  cidFile?: string,
): { command: string; input: string } {
  const multiLine = env.some((entry) => /[\r\n]/.test(entry));
  const cid = cidFile ? ` ${shellQuote(['--cidfile', cidFile])}` : '';
  const create = `${shellQuote(['docker', 'create', '--env-file'])} "$d/env"${cid} ${shellQuote([...args])}; s=$?`;
  const start = `umask 077; d=${shellQuote([envDir])}; mkdir -p "$d" && cat >"$d/${multiLine ? 'entries' : 'env'}" || { rm -rf "$d"; exit 1; }`;
  return {
    command: [
      start,
      // NUL-separated records for perl; plain lines otherwise.
      multiLine ? `${shellQuote(['perl', '-e', ENV_SPLITTER])} "$d" ${create}` : create,
      'rm -rf "$d"; exit $s',
    ].join('\n'),
    input: env.map((entry) => `${entry}${multiLine ? '\0' : '\n'}`).join(''),
  };
}

/**
 * Non-default settings of the source container that buildCreateArgs cannot reproduce or that
 * cannot be migrated, one line each ("HostConfig.Devices: /dev/fuse ..."). Empty when none.
 */
export function unsupportedSettings(inspect: ContainerInspect, imageConfig?: ImageConfig): string[] {
  const host = inspect.HostConfig;
  const found: string[] = [];
  const devices = host.Devices ?? [];
  if (devices.length > 0) {
    found.push(
      `HostConfig.Devices: ${devices.map((d) => d.PathOnHost).join(', ')} (device state cannot be checkpointed)`,
    );
  }
  const requests = host.DeviceRequests ?? [];
  if (requests.length > 0) {
    const what = requests
      .map((r) => r.Driver || (r.Capabilities ?? []).flat().join('+') || 'device')
      .join(', ');
    found.push(`HostConfig.DeviceRequests: ${what} (GPU and other device requests cannot be checkpointed)`);
  }
  for (const [setting, mode] of [
    ['NetworkMode', host.NetworkMode],
    ['IpcMode', host.IpcMode],
    ['PidMode', host.PidMode],
  ] as const) {
    if (mode && sharesNamespace(mode))
      found.push(`HostConfig.${setting}: ${mode} (shares another container's namespace)`);
  }
  if (host.IpcMode === 'host')
    found.push("HostConfig.IpcMode: host (the host's IPC namespace cannot be checkpointed)");
  if (host.PidMode === 'host')
    found.push("HostConfig.PidMode: host (the host's PID namespace cannot be checkpointed)");
  if ((host.Links ?? []).length > 0) {
    found.push(
      `HostConfig.Links: ${(host.Links ?? []).join(', ')} (legacy links name containers on the source)`,
    );
  }
  if ((host.VolumesFrom ?? []).length > 0) {
    found.push(
      `HostConfig.VolumesFrom: ${(host.VolumesFrom ?? []).join(', ')} (names containers on the source)`,
    );
  }
  const extra = extraNetworks(inspect);
  if (extra.length > 0) {
    found.push(
      `NetworkSettings.Networks: ${extra.join(', ')} (connected after creation; only ${host.NetworkMode ?? 'default'} is recreated)`,
    );
  }
  for (const option of host.SecurityOpt ?? []) {
    if (isInlineSeccompProfile(option))
      found.push('HostConfig.SecurityOpt: an inline seccomp profile (the CLI only takes a file)');
  }
  for (const mount of host.Mounts ?? []) {
    if (formatMount(mount) === undefined)
      found.push(`HostConfig.Mounts: ${mount.Type} mount at ${mount.Target}`);
  }
  const health = inspect.Config.Healthcheck;
  const test = health?.Test ?? [];
  if (test[0] === 'CMD' && !(imageConfig && sameHealth(health, imageConfig.Healthcheck))) {
    const outcome = imageConfig
      ? 'recreated in the shell form, which needs /bin/sh in the image'
      : "left to the image's HEALTHCHECK";
    found.push(`Config.Healthcheck: exec form ${JSON.stringify(test)} (no docker create flag; ${outcome})`);
  }
  return found;
}

/**
 * What a network holder made from `owner` owns (the same inspect fields buildHolderArgs
 * reads), for a checkpoint's manifest: network, aliases, addresses, published ports, hostname.
 */
export function holderNeeds(owner: ContainerInspect, app: ContainerInspect): HolderNeeds {
  const mode = owner.HostConfig.NetworkMode || 'default';
  const network = DEFAULT_NETWORK_MODES.has(mode) ? 'bridge' : mode;
  const appName = app.Name.replace(/^\//, '');
  const ipam = owner.NetworkSettings.Networks[network]?.IPAMConfig;
  const ports = Object.keys(owner.HostConfig.PortBindings ?? {})
    .sort()
    .flatMap((port) => (owner.HostConfig.PortBindings?.[port] ?? []).map((b) => formatPublish(port, b)));
  // As buildHolderArgs: on a user network the holder answers to the app's aliases and its name.
  const userNetwork = !DEFAULT_NETWORK_MODES.has(mode) && mode !== 'none';
  const aliases = userNetwork ? userAliases(owner, network, '') : [];
  return {
    network,
    aliases: userNetwork && !aliases.includes(appName) ? [...aliases, appName] : aliases,
    ...(ipam?.IPv4Address ? { ipv4Address: ipam.IPv4Address } : {}),
    ...(ipam?.IPv6Address ? { ipv6Address: ipam.IPv6Address } : {}),
    ports,
    ...(owner.Config.Hostname ? { hostname: owner.Config.Hostname } : {}),
    ...(owner !== app ? { sourceHolder: owner.Name.replace(/^\//, '') } : {}),
  };
}
