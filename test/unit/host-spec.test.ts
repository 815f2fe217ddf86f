import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { formatHostSpec, parseHostSpec } from '../../src/host/host-spec.js';

describe('parseHostSpec', () => {
  it.each([
    ['host', { user: 'root', host: 'host', port: 22 }],
    ['10.0.0.2', { user: 'root', host: '10.0.0.2', port: 22 }],
    ['db-1.eu.example.com', { user: 'root', host: 'db-1.eu.example.com', port: 22 }],
    ['deploy@10.0.0.2', { user: 'deploy', host: '10.0.0.2', port: 22 }],
    ['deploy@10.0.0.2:2222', { user: 'deploy', host: '10.0.0.2', port: 2222 }],
    ['10.0.0.2:2222', { user: 'root', host: '10.0.0.2', port: 2222 }],
    ['user_1.x-y@host', { user: 'user_1.x-y', host: 'host', port: 22 }],
    ['_svc@host', { user: '_svc', host: 'host', port: 22 }],
    ['host:1', { user: 'root', host: 'host', port: 1 }],
    ['host:65535', { user: 'root', host: 'host', port: 65535 }],
    ['  root@host:22  ', { user: 'root', host: 'host', port: 22 }],
    ['[2001:db8::5]', { user: 'root', host: '2001:db8::5', port: 22 }],
    ['[2001:db8::5]:2200', { user: 'root', host: '2001:db8::5', port: 2200 }],
    ['admin@[2001:db8::5]:22', { user: 'admin', host: '2001:db8::5', port: 22 }],
    ['[::1]', { user: 'root', host: '::1', port: 22 }],
    ['[::ffff:10.0.0.2]:22', { user: 'root', host: '::ffff:10.0.0.2', port: 22 }],
    ['[fe80::1%eth0]:22', { user: 'root', host: 'fe80::1%eth0', port: 22 }],
  ])('reads %j', (text, expected) => {
    expect(parseHostSpec(text, 'target')).toEqual(expected);
  });

  it.each([
    ['', 'is empty'],
    ['   ', 'is empty'],
    ['@host', 'invalid user name'],
    ['-user@host', 'invalid user name'],
    ['us er@host', 'invalid user name'],
    ['a@b@host', 'invalid user name'],
    ['root@', 'invalid host name'],
    ['-host', 'invalid host name'],
    ['host-', 'invalid host name'],
    ['ho_st', 'invalid host name'],
    ['host/x', 'invalid host name'],
    ['host:', 'invalid port'],
    ['host:0', 'invalid port'],
    ['host:65536', 'invalid port'],
    ['host:22a', 'invalid port'],
    ['host:-1', 'invalid port'],
    ['host:123456', 'invalid port'],
    ['2001:db8::5', 'put it in brackets'],
    ['root@2001:db8::5:22', 'put it in brackets'],
    ['[2001:db8::5', 'never closes'],
    ['[2001:db8::5]22', 'text after the closing ]'],
    ['[2001:db8::5]:', 'invalid port'],
    ['[2001:db8::5]:99999', 'invalid port'],
    ['[]', 'invalid IPv6 address'],
    ['[host.example.com]', 'invalid IPv6 address'],
  ])('rejects %j (%s)', (text, why) => {
    let caught: unknown;
    try {
      parseHostSpec(text, 'target');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MigrationError);
    const error = caught as MigrationError;
    expect(error.code).toBe('INPUT_INVALID');
    expect(error.step).toBe('inputs');
    expect(error.message).toContain(why);
    expect(error.message.startsWith(`target: "${text}"`)).toBe(true);
    expect(error.remedy).toContain('[user@]host[:port]');
  });

  it('names the input it was given in errors', () => {
    expect(() => parseHostSpec('a@', 'jump-host')).toThrow(/^jump-host: /);
  });
});

describe('formatHostSpec', () => {
  it.each([
    [{ user: 'root', host: '10.0.0.2', port: 22 }, 'root@10.0.0.2:22'],
    [{ user: 'deploy', host: 'db.example.com', port: 2222 }, 'deploy@db.example.com:2222'],
    [{ user: 'root', host: '2001:db8::5', port: 22 }, 'root@[2001:db8::5]:22'],
  ])('writes %j as %s', (spec, text) => {
    expect(formatHostSpec(spec)).toBe(text);
  });

  it.each(['root@10.0.0.2:22', 'deploy@[2001:db8::5]:2200', 'x@host.example.com:1'])(
    'round-trips %s through parseHostSpec',
    (text) => {
      expect(formatHostSpec(parseHostSpec(text, 'source'))).toBe(text);
    },
  );
});
