import { MigrationError } from '../../errors.js';

// The subset of `docker container inspect` (API 1.41 to 1.45) the migration reads. Docker
// prints null for empty lists and maps; the parser turns every null into an absent field.

export interface ContainerState {
  /** "created", "running", "paused", "restarting", "removing", "exited", "dead". */
  Status: string;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  Pid?: number;
  StartedAt?: string;
}

export interface HealthConfig {
  /** ["CMD-SHELL", "curl ..."], ["CMD", "curl", ...], ["NONE"], or [] (inherit). */
  Test?: string[];
  /** Durations in nanoseconds; 0 means inherit. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Fields a container's Config shares with an image's Config. */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
  /** Keys like "80/tcp"; values are always empty objects. */
  ExposedPorts?: Record<string, unknown>;
  /** Keys are container paths; values are always empty objects. */
  Volumes?: Record<string, unknown>;
  StopSignal?: string;
  Healthcheck?: HealthConfig;
}

export interface ContainerConfig extends ImageConfig {
  Hostname?: string;
  Domainname?: string;
  /** Seconds; absent means Docker's default of 10. */
  StopTimeout?: number;
  Tty?: boolean;
  OpenStdin?: boolean;
  /** The image reference the container was created from, as the user wrote it. */
  Image?: string;
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface RestartPolicy {
  /** "", "no", "always", "unless-stopped", "on-failure". */
  Name: string;
  MaximumRetryCount: number;
}

export interface BindOptions {
  Propagation?: string;
  NonRecursive?: boolean;
  CreateMountpoint?: boolean;
  ReadOnlyNonRecursive?: boolean;
  ReadOnlyForceRecursive?: boolean;
}

export interface VolumeOptions {
  NoCopy?: boolean;
  Labels?: Record<string, string>;
  Subpath?: string;
  DriverConfig?: { Name?: string; Options?: Record<string, string> };
}

export interface TmpfsOptions {
  SizeBytes?: number;
  /** File mode as a number (JSON has no octal): 1023 is 0o1777. */
  Mode?: number;
}

/** One `--mount` as given at create time (HostConfig.Mounts). */
export interface MountSpec {
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: BindOptions;
  VolumeOptions?: VolumeOptions;
  TmpfsOptions?: TmpfsOptions;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface LogConfig {
  Type: string;
  Config?: Record<string, string>;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions?: string;
}

export interface DeviceRequest {
  Driver?: string;
  Count?: number;
  DeviceIDs?: string[];
  Capabilities?: string[][];
}

export interface HostConfig {
  /** `-v` specs exactly as given: "/src:/dst:ro,Z", "name:/dst". */
  Binds?: string[];
  Mounts?: MountSpec[];
  RestartPolicy?: RestartPolicy;
  PortBindings?: Record<string, PortBinding[]>;
  PublishAllPorts?: boolean;
  /** "bridge"/"default", "host", "none", "container:<id>", or a network name. */
  NetworkMode?: string;
  SecurityOpt?: string[];
  CapAdd?: string[];
  CapDrop?: string[];
  Privileged?: boolean;
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  MemorySwappiness?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  BlkioWeight?: number;
  PidsLimit?: number;
  Ulimits?: Ulimit[];
  ShmSize?: number;
  Init?: boolean;
  ReadonlyRootfs?: boolean;
  ExtraHosts?: string[];
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  Sysctls?: Record<string, string>;
  Tmpfs?: Record<string, string>;
  LogConfig?: LogConfig;
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  UsernsMode?: string;
  CgroupnsMode?: string;
  CgroupParent?: string;
  /** OCI annotations for the runtime (org.criu.config: the file runc hands CRIU). */
  Annotations?: Record<string, string>;
  Devices?: DeviceMapping[];
  DeviceRequests?: DeviceRequest[];
  DeviceCgroupRules?: string[];
  Runtime?: string;
  GroupAdd?: string[];
  OomKillDisable?: boolean;
  OomScoreAdj?: number;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[];
  Links?: string[];
  StorageOpt?: Record<string, string>;
}

/** A mount as it is in effect (top-level Mounts), including anonymous volumes. */
export interface MountPoint {
  /** "bind", "volume", "tmpfs", "npipe", "cluster". */
  Type: string;
  /** Volume name (a 64-hex name for anonymous volumes). */
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export interface EndpointIpamConfig {
  IPv4Address?: string;
  IPv6Address?: string;
  LinkLocalIPs?: string[];
}

export interface EndpointSettings {
  Aliases?: string[];
  IPAMConfig?: EndpointIpamConfig;
  NetworkID?: string;
  IPAddress?: string;
  MacAddress?: string;
  DriverOpts?: Record<string, string>;
}

export interface GraphDriver {
  Name: string;
  /** For overlay2: LowerDir, MergedDir, UpperDir, WorkDir. */
  Data: Record<string, string>;
}

export interface ContainerInspect {
  Id: string;
  /** With Docker's leading slash: "/web". */
  Name: string;
  State: ContainerState;
  RestartCount: number;
  /** The image ID, "sha256:...". */
  Image: string;
  Config: ContainerConfig;
  HostConfig: HostConfig;
  Mounts: MountPoint[];
  NetworkSettings: { Networks: Record<string, EndpointSettings> };
  GraphDriver?: GraphDriver;
}

export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  Config: ImageConfig;
}

// --- guards ------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isStringLists(value: unknown): value is string[][] {
  return Array.isArray(value) && value.every(isStringList);
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

class InspectShapeError extends Error {}

function wrong(path: string, expected: string): never {
  throw new InspectShapeError(`${path} is not ${expected}`);
}

/** Reads typed fields of one JSON object; null and absent both read as undefined. */
class Fields {
  constructor(
    private readonly obj: JsonObject,
    private readonly path: string,
  ) {}

  private at(key: string): unknown {
    const value = this.obj[key];
    return value === null ? undefined : value;
  }

  private where(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  string(key: string): string | undefined {
    const value = this.at(key);
    if (value === undefined || typeof value === 'string') return value;
    return wrong(this.where(key), 'a string');
  }

  requiredString(key: string): string {
    return this.string(key) ?? wrong(this.where(key), 'a string');
  }

  number(key: string): number | undefined {
    const value = this.at(key);
    if (value === undefined || (typeof value === 'number' && Number.isFinite(value))) return value;
    return wrong(this.where(key), 'a number');
  }

  boolean(key: string): boolean | undefined {
    const value = this.at(key);
    if (value === undefined || typeof value === 'boolean') return value;
    return wrong(this.where(key), 'true or false');
  }

  requiredBoolean(key: string): boolean {
    return this.boolean(key) ?? wrong(this.where(key), 'true or false');
  }

  strings(key: string): string[] | undefined {
    const value = this.at(key);
    if (value === undefined || isStringList(value)) return value;
    return wrong(this.where(key), 'a list of strings');
  }

  /** Cmd, Entrypoint and Healthcheck.Test: the API takes a single string for them too. */
  command(key: string): string[] | undefined {
    const value = this.at(key);
    return typeof value === 'string' ? [value] : this.strings(key);
  }

  stringMap(key: string): Record<string, string> | undefined {
    const value = this.at(key);
    if (value === undefined) return undefined;
    if (isStringMap(value)) return value;
    return wrong(this.where(key), 'a map of strings');
  }

  /** Maps like ExposedPorts whose values carry nothing: only the keys are kept. */
  keySet(key: string): Record<string, unknown> | undefined {
    const value = this.at(key);
    if (value === undefined) return undefined;
    if (isObject(value)) return Object.fromEntries(Object.keys(value).map((k) => [k, {}]));
    return wrong(this.where(key), 'a map');
  }

  object(key: string): Fields | undefined {
    const value = this.at(key);
    if (value === undefined) return undefined;
    if (isObject(value)) return new Fields(value, this.where(key));
    return wrong(this.where(key), 'an object');
  }

  requiredObject(key: string): Fields {
    return this.object(key) ?? wrong(this.where(key), 'an object');
  }

  objects(key: string): Fields[] | undefined {
    const value = this.at(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return wrong(this.where(key), 'a list');
    return value.map((item, i) => {
      if (!isObject(item)) return wrong(`${this.where(key)}[${i}]`, 'an object');
      return new Fields(item, `${this.where(key)}[${i}]`);
    });
  }

  /** Entries of a map whose values are objects (or null, read as absent). */
  objectEntries(key: string): [string, Fields | undefined][] | undefined {
    const value = this.at(key);
    if (value === undefined) return undefined;
    if (!isObject(value)) return wrong(this.where(key), 'a map');
    return Object.entries(value).map(([k, v]) => {
      if (v === null) return [k, undefined];
      if (!isObject(v)) return wrong(`${this.where(key)}.${k}`, 'an object');
      return [k, new Fields(v, `${this.where(key)}.${k}`)];
    });
  }

  raw(key: string): unknown {
    return this.at(key);
  }
}

// --- readers -----------------------------------------------------------------------------------

function readHealth(f: Fields | undefined): HealthConfig | undefined {
  if (!f) return undefined;
  return {
    Test: f.command('Test'),
    Interval: f.number('Interval'),
    Timeout: f.number('Timeout'),
    StartPeriod: f.number('StartPeriod'),
    StartInterval: f.number('StartInterval'),
    Retries: f.number('Retries'),
  };
}

function readImageConfig(f: Fields): ImageConfig {
  return {
    User: f.string('User'),
    Env: f.strings('Env'),
    Cmd: f.command('Cmd'),
    Entrypoint: f.command('Entrypoint'),
    WorkingDir: f.string('WorkingDir'),
    Labels: f.stringMap('Labels'),
    ExposedPorts: f.keySet('ExposedPorts'),
    Volumes: f.keySet('Volumes'),
    StopSignal: f.string('StopSignal'),
    Healthcheck: readHealth(f.object('Healthcheck')),
  };
}

function readContainerConfig(f: Fields): ContainerConfig {
  return {
    ...readImageConfig(f),
    ...{
      Hostname: f.string('Hostname'),
      Domainname: f.string('Domainname'),
      StopTimeout: f.number('StopTimeout'),
      Tty: f.boolean('Tty'),
      OpenStdin: f.boolean('OpenStdin'),
      Image: f.string('Image'),
    },
  };
}

function readMountSpec(f: Fields): MountSpec {
  const bind = f.object('BindOptions');
  const volume = f.object('VolumeOptions');
  const tmpfs = f.object('TmpfsOptions');
  const driver = volume?.object('DriverConfig');
  return {
    Type: f.requiredString('Type'),
    Source: f.string('Source'),
    Target: f.requiredString('Target'),
    ReadOnly: f.boolean('ReadOnly'),
    BindOptions: bind && {
      Propagation: bind.string('Propagation'),
      NonRecursive: bind.boolean('NonRecursive'),
      CreateMountpoint: bind.boolean('CreateMountpoint'),
      ReadOnlyNonRecursive: bind.boolean('ReadOnlyNonRecursive'),
      ReadOnlyForceRecursive: bind.boolean('ReadOnlyForceRecursive'),
    },
    VolumeOptions: volume && {
      NoCopy: volume.boolean('NoCopy'),
      Labels: volume.stringMap('Labels'),
      Subpath: volume.string('Subpath'),
      DriverConfig: driver && { Name: driver.string('Name'), Options: driver.stringMap('Options') },
    },
    TmpfsOptions: tmpfs && { SizeBytes: tmpfs.number('SizeBytes'), Mode: tmpfs.number('Mode') },
  };
}

function readPortBindings(f: Fields): Record<string, PortBinding[]> | undefined {
  const value = f.raw('PortBindings');
  if (value === undefined) return undefined;
  if (!isObject(value)) return wrong('HostConfig.PortBindings', 'a map');
  const result: Record<string, PortBinding[]> = {};
  for (const [port, list] of Object.entries(value)) {
    if (list === null) {
      result[port] = [];
      continue;
    }
    if (!Array.isArray(list)) return wrong(`HostConfig.PortBindings.${port}`, 'a list');
    result[port] = list.map((item, i) => {
      if (!isObject(item)) return wrong(`HostConfig.PortBindings.${port}[${i}]`, 'an object');
      const b = new Fields(item, `HostConfig.PortBindings.${port}[${i}]`);
      return { HostIp: b.string('HostIp'), HostPort: b.string('HostPort') };
    });
  }
  return result;
}

function readCapabilities(f: Fields): string[][] | undefined {
  const value = f.raw('Capabilities');
  if (value === undefined) return undefined;
  return isStringLists(value) ? value : wrong('HostConfig.DeviceRequests[].Capabilities', 'a list of lists');
}

function readHostConfig(f: Fields): HostConfig {
  const restart = f.object('RestartPolicy');
  const log = f.object('LogConfig');
  return {
    Binds: f.strings('Binds'),
    Mounts: f.objects('Mounts')?.map(readMountSpec),
    RestartPolicy: restart && {
      Name: restart.string('Name') ?? '',
      MaximumRetryCount: restart.number('MaximumRetryCount') ?? 0,
    },
    PortBindings: readPortBindings(f),
    PublishAllPorts: f.boolean('PublishAllPorts'),
    NetworkMode: f.string('NetworkMode'),
    SecurityOpt: f.strings('SecurityOpt'),
    CapAdd: f.strings('CapAdd'),
    CapDrop: f.strings('CapDrop'),
    Privileged: f.boolean('Privileged'),
    Memory: f.number('Memory'),
    MemorySwap: f.number('MemorySwap'),
    MemoryReservation: f.number('MemoryReservation'),
    MemorySwappiness: f.number('MemorySwappiness'),
    NanoCpus: f.number('NanoCpus'),
    CpuShares: f.number('CpuShares'),
    CpuPeriod: f.number('CpuPeriod'),
    CpuQuota: f.number('CpuQuota'),
    CpusetCpus: f.string('CpusetCpus'),
    CpusetMems: f.string('CpusetMems'),
    BlkioWeight: f.number('BlkioWeight'),
    PidsLimit: f.number('PidsLimit'),
    Ulimits: f.objects('Ulimits')?.map((u) => ({
      Name: u.requiredString('Name'),
      Soft: u.number('Soft') ?? 0,
      Hard: u.number('Hard') ?? 0,
    })),
    ShmSize: f.number('ShmSize'),
    Init: f.boolean('Init'),
    ReadonlyRootfs: f.boolean('ReadonlyRootfs'),
    ExtraHosts: f.strings('ExtraHosts'),
    Dns: f.strings('Dns'),
    DnsSearch: f.strings('DnsSearch'),
    DnsOptions: f.strings('DnsOptions'),
    Sysctls: f.stringMap('Sysctls'),
    Tmpfs: f.stringMap('Tmpfs'),
    LogConfig: log && { Type: log.string('Type') ?? '', Config: log.stringMap('Config') },
    IpcMode: f.string('IpcMode'),
    PidMode: f.string('PidMode'),
    UTSMode: f.string('UTSMode'),
    UsernsMode: f.string('UsernsMode'),
    CgroupnsMode: f.string('CgroupnsMode'),
    CgroupParent: f.string('CgroupParent'),
    Annotations: f.stringMap('Annotations'),
    Devices: f.objects('Devices')?.map((d) => ({
      PathOnHost: d.requiredString('PathOnHost'),
      PathInContainer: d.requiredString('PathInContainer'),
      CgroupPermissions: d.string('CgroupPermissions'),
    })),
    DeviceRequests: f.objects('DeviceRequests')?.map((d) => ({
      Driver: d.string('Driver'),
      Count: d.number('Count'),
      DeviceIDs: d.strings('DeviceIDs'),
      Capabilities: readCapabilities(d),
    })),
    DeviceCgroupRules: f.strings('DeviceCgroupRules'),
    Runtime: f.string('Runtime'),
    GroupAdd: f.strings('GroupAdd'),
    OomKillDisable: f.boolean('OomKillDisable'),
    OomScoreAdj: f.number('OomScoreAdj'),
    AutoRemove: f.boolean('AutoRemove'),
    VolumeDriver: f.string('VolumeDriver'),
    VolumesFrom: f.strings('VolumesFrom'),
    Links: f.strings('Links'),
    StorageOpt: f.stringMap('StorageOpt'),
  };
}

function readMountPoint(f: Fields): MountPoint {
  return {
    Type: f.requiredString('Type'),
    Name: f.string('Name'),
    Source: f.string('Source') ?? '',
    Destination: f.requiredString('Destination'),
    Driver: f.string('Driver'),
    Mode: f.string('Mode') ?? '',
    RW: f.requiredBoolean('RW'),
    Propagation: f.string('Propagation') ?? '',
  };
}

function readEndpoint(f: Fields | undefined): EndpointSettings {
  if (!f) return {};
  const ipam = f.object('IPAMConfig');
  return {
    Aliases: f.strings('Aliases'),
    IPAMConfig: ipam && {
      IPv4Address: ipam.string('IPv4Address'),
      IPv6Address: ipam.string('IPv6Address'),
      LinkLocalIPs: ipam.strings('LinkLocalIPs'),
    },
    NetworkID: f.string('NetworkID'),
    IPAddress: f.string('IPAddress'),
    MacAddress: f.string('MacAddress'),
    DriverOpts: f.stringMap('DriverOpts'),
  };
}

function readContainer(f: Fields): ContainerInspect {
  const id = f.requiredString('Id');
  const name = f.requiredString('Name');
  const state = f.requiredObject('State');
  const graph = f.object('GraphDriver');
  const networks = f.object('NetworkSettings')?.objectEntries('Networks') ?? [];
  return {
    Id: id,
    Name: name,
    State: {
      Status: state.requiredString('Status'),
      Running: state.requiredBoolean('Running'),
      Paused: state.requiredBoolean('Paused'),
      Restarting: state.requiredBoolean('Restarting'),
      Pid: state.number('Pid'),
      StartedAt: state.string('StartedAt'),
    },
    RestartCount: f.number('RestartCount') ?? 0,
    Image: f.requiredString('Image'),
    Config: readContainerConfig(f.requiredObject('Config')),
    HostConfig: readHostConfig(f.requiredObject('HostConfig')),
    Mounts: f.objects('Mounts')?.map(readMountPoint) ?? [],
    NetworkSettings: { Networks: Object.fromEntries(networks.map(([name, ep]) => [name, readEndpoint(ep)])) },
    GraphDriver: graph && { Name: graph.string('Name') ?? '', Data: graph.stringMap('Data') ?? {} },
  };
}

function parseFirst<T>(json: string, what: string, read: (f: Fields) => T): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new MigrationError('COMMAND_FAILED', `${what} did not print JSON`, { cause: error });
  }
  // The CLI prints an array even for one object; the API prints the object itself.
  const first = Array.isArray(value) ? value[0] : value;
  if (Array.isArray(value) && value.length === 0) {
    throw new MigrationError('CONTAINER_NOT_FOUND', `${what} printed no object`);
  }
  if (!isObject(first)) throw new MigrationError('COMMAND_FAILED', `${what} printed no object`);
  try {
    return read(new Fields(first, ''));
  } catch (error) {
    if (!(error instanceof InspectShapeError)) throw error;
    throw new MigrationError(
      'COMMAND_FAILED',
      `${what} printed JSON of an unexpected shape: ${error.message}`,
      {
        cause: error,
      },
    );
  }
}

/** Parses `docker container inspect` output (an array of one) into the fields we rely on. */
export function parseContainerInspect(json: string): ContainerInspect {
  return parseFirst(json, 'docker container inspect', readContainer);
}

/** Parses `docker container inspect` of several containers: every object, in order. */
export function parseContainerInspectList(json: string): ContainerInspect[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new MigrationError('COMMAND_FAILED', 'docker container inspect did not print JSON', {
      cause: error,
    });
  }
  if (!Array.isArray(value))
    throw new MigrationError('COMMAND_FAILED', 'docker container inspect printed no list');
  return value.map((item) => parseFirst(JSON.stringify([item]), 'docker container inspect', readContainer));
}

/** Parses `docker image inspect` output; its Config holds the defaults a container inherits. */
export function parseImageInspect(json: string): ImageInspect {
  return parseFirst(json, 'docker image inspect', (f) => ({
    Id: f.requiredString('Id'),
    RepoTags: f.strings('RepoTags') ?? [],
    Config: readImageConfig(f.object('Config') ?? new Fields({}, 'Config')),
  }));
}

/** "web" for Name "/web". */
export function containerName(inspect: ContainerInspect): string {
  return inspect.Name.replace(/^\//, '');
}
