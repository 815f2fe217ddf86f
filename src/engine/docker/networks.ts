import { describeHost, type Host } from '../../host/host.js';
import { shellQuote } from '../../host/shell.js';
import type { NetworkSpec } from '../../policy/compose-unit.js';
import { EngineError } from '../engine.js';

const NETWORK_TIMEOUT_MS = 60_000;
// Values that become arguments on the other host: no control characters, sane names.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const DRIVER = /^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const CONTROL = /[\u0000-\u001f\u007f]/;

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function strings(value: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(record(value))) {
    if (typeof item !== 'string' || CONTROL.test(key) || CONTROL.test(item) || key.includes('='))
      throw new Error(`${what} ${JSON.stringify(key)} has an unusable value`);
    out[key] = item;
  }
  return out;
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && !CONTROL.test(value) ? value : undefined;
}

/** Pure: one network of `docker network inspect`'s JSON array, shape-checked. */
export function parseNetworkInspect(json: string): NetworkSpec {
  const parsed: unknown = JSON.parse(json);
  const item = record(Array.isArray(parsed) ? parsed[0] : parsed);
  const name = item.Name;
  const driver = item.Driver;
  if (typeof name !== 'string' || !NAME.test(name))
    throw new Error(`network name ${String(name)} is unusable`);
  if (typeof driver !== 'string' || !DRIVER.test(driver))
    throw new Error(`network ${name}: driver ${String(driver)} is unusable`);
  const configs = record(item.IPAM).Config;
  const ipam = (Array.isArray(configs) ? configs : []).map((entry) => {
    const pool = record(entry);
    const subnet = optionalText(pool.Subnet);
    const gateway = optionalText(pool.Gateway);
    const ipRange = optionalText(pool.IPRange);
    return {
      ...(subnet ? { subnet } : {}),
      ...(gateway ? { gateway } : {}),
      ...(ipRange ? { ipRange } : {}),
    };
  });
  return {
    name,
    driver,
    internal: item.Internal === true,
    attachable: item.Attachable === true,
    enableIPv6: item.EnableIPv6 === true,
    ipam,
    options: strings(item.Options, `network ${name}: option`),
    labels: strings(item.Labels, `network ${name}: label`),
  };
}

/** The network's definition on a host, or undefined when it has none of that name. */
export async function inspectNetwork(
  host: Host,
  name: string,
  step: string,
): Promise<NetworkSpec | undefined> {
  const command = shellQuote(['docker', 'network', 'inspect', '--', name]);
  const result = await host.run(command, { timeoutMs: NETWORK_TIMEOUT_MS });
  if (result.exitCode !== 0) {
    if (/not found|no such network/i.test(result.stderr)) return undefined;
    throw new EngineError(command, result.exitCode, result.stderr, `docker network inspect ${name} failed`, {
      step,
      host: describeHost(host),
    });
  }
  try {
    return parseNetworkInspect(result.stdout);
  } catch (error) {
    throw new EngineError(
      command,
      0,
      error instanceof Error ? error.message : String(error),
      `docker network inspect ${name}: unusable answer`,
      { step, host: describeHost(host) },
    );
  }
}

export async function runNetworkCommand(host: Host, args: string[], step: string): Promise<void> {
  const command = shellQuote(['docker', ...args]);
  const result = await host.run(command, { timeoutMs: NETWORK_TIMEOUT_MS });
  if (result.exitCode !== 0)
    throw new EngineError(
      command,
      result.exitCode,
      result.stderr || result.stdout,
      `docker ${args.slice(0, 2).join(' ')} failed`,
      {
        step,
        host: describeHost(host),
      },
    );
}
