import { MigrationError } from '../errors.js';

/** An SSH destination as users write it: `[user@]host[:port]`, IPv6 in brackets. */
export interface HostSpec {
  user: string;
  host: string;
  port: number;
}

export const DEFAULT_SSH_USER = 'root';
export const DEFAULT_SSH_PORT = 22;

export function parseHostSpec(text: string, inputName: string): HostSpec {
  const value = text.trim();
  const fail = (why: string): never => {
    throw new MigrationError('INPUT_INVALID', `${inputName}: "${text}" ${why}`, {
      step: 'inputs',
      remedy: `write ${inputName} as [user@]host[:port], with an IPv6 address in brackets, for example root@[2001:db8::5]:22`,
    });
  };
  if (value === '') fail('is empty');
  const at = value.lastIndexOf('@');
  const user = at >= 0 ? value.slice(0, at) : DEFAULT_SSH_USER;
  const rest = at >= 0 ? value.slice(at + 1) : value;
  if (!/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(user)) fail('has an invalid user name');
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) fail('opens a [ for an IPv6 address but never closes it');
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) fail('has text after the closing ]');
    portText = after === '' ? undefined : after.slice(1);
    if (!/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(host)) fail('has an invalid IPv6 address');
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) fail('looks like an IPv6 address: put it in brackets');
    host = parts[0] ?? '';
    portText = parts[1];
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) fail('has an invalid host name');
  }
  let port = DEFAULT_SSH_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      fail('has an invalid port (1 to 65535)');
    }
    port = Number(portText);
  }
  return { user, host, port };
}

export function formatHostSpec(spec: HostSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.user}@${host}:${spec.port}`;
}
