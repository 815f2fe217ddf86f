import { describe, expect, it } from 'vitest';
import {
  atLeast,
  compareVersions,
  formatVersion,
  majorMinor,
  parseVersion,
} from '../../src/policy/versions.js';

describe('parseVersion', () => {
  it.each([
    ['4.2.1', 4, 2, 1],
    ['4.2', 4, 2, 0],
    ['4', 4, 0, 0],
    ['3.17.1', 3, 17, 1],
    ['26.1.5+dfsg1', 26, 1, 5],
    ['1.7.24~ds1-6+b4', 1, 7, 24],
    ['1.7.24~ds1', 1, 7, 24],
    ['1.1.15+ds1', 1, 1, 15],
    ['28.5.1', 28, 5, 1],
    ['20.10.24+dfsg1', 20, 10, 24],
    ['6.18.44-fc-v782', 6, 18, 44],
    ['6.1.0-28-amd64', 6, 1, 0],
    ['5.15.0-1057-azure', 5, 15, 0],
    ['v1.1.12', 1, 1, 12],
    ['2:1.2.3-1', 1, 2, 3],
    ['  4.1.1\n', 4, 1, 1],
    ['1.2.3.4', 1, 2, 3],
  ])('reads %j', (text, major, minor, patch) => {
    expect(parseVersion(text)).toEqual({ major, minor, patch, raw: text.trim() });
  });

  it.each([[''], ['   '], ['Version: 4.2'], ['dev'], ['unknown'], ['.5'], ['x1.2']])('rejects %j', (text) => {
    expect(parseVersion(text)).toBeUndefined();
  });

  it('takes undefined', () => {
    expect(parseVersion(undefined)).toBeUndefined();
  });

  it('formats the numbers without the suffix', () => {
    const v = parseVersion('26.1.5+dfsg1');
    expect(v && formatVersion(v)).toBe('26.1.5');
    expect(v && majorMinor(v)).toBe('26.1');
  });
});

describe('compareVersions', () => {
  it.each([
    ['4.2.1', '4.2.1', 0],
    ['4.2', '4.2.0', 0],
    ['4.2.1', '4.2', 1],
    ['4.1.1', '4.2', -1],
    ['3.17.1', '4.1', -1],
    ['6.18.44-fc-v782', '6.13', 1],
    ['6.9.1', '6.13', -1],
    ['26.1.5+dfsg1', '26.1.5', 0],
    ['1.7.24~ds1-6+b4', '1.7.3', 1],
    ['10.0', '9.99.99', 1],
  ])('%s vs %s is %i', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
    expect(Math.sign(compareVersions(b, a))).toBe(sign === 0 ? 0 : -sign);
  });

  it('takes parsed versions too', () => {
    const a = parseVersion('4.2.1');
    expect(a && compareVersions(a, '4.1')).toBeGreaterThan(0);
  });

  it('throws for a string that is not a version', () => {
    expect(() => compareVersions('4.2', 'latest')).toThrow(/not a version/);
  });

  it('sorts', () => {
    const list = ['4.2.1', '3.17.1', '4.1.1', '4.2', '4.10.0'];
    expect([...list].sort(compareVersions)).toEqual(['3.17.1', '4.1.1', '4.2', '4.2.1', '4.10.0']);
  });
});

describe('atLeast', () => {
  it.each([
    ['4.2.1', '4.2', true],
    ['4.2', '4.2', true],
    ['4.1.1', '4.2', false],
    ['6.18.44-fc-v782', '6.13', true],
    ['6.12.9', '6.13', false],
    ['garbage', '4.1', false],
  ])('%s >= %s is %s', (v, min, expected) => {
    expect(atLeast(v, min)).toBe(expected);
  });

  it('is false for an unknown version', () => {
    expect(atLeast(undefined, '1.0')).toBe(false);
  });
});
