import { execFileSync } from 'node:child_process';
import {
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  containerdTmpScript,
  describeRestorePath,
  parseContainerdTmp,
  parseStagedCheckpoint,
  relativeLink,
  stagedCheckpointScript,
} from '../../src/engine/docker/staged-pages.js';

describe('relativeLink', () => {
  const staged = '/var/lib/criu-migrate/work/cp-1/staged/pages-1.img';
  it.each([
    ['/tmp', '../../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
    ['/tmp/', '../../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
    ['/var/tmp', '../../../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
    ['/var/lib/containerd/tmp//', '../../../../../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
    ['/a/./b/', '../../../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
    ['/', '../var/lib/criu-migrate/work/cp-1/staged/pages-1.img'],
  ])('from %s/ctrd-checkpointX', (tmp, link) => {
    expect(relativeLink(tmp, staged)).toBe(link);
  });

  it('normalises the staged path too', () => {
    expect(relativeLink('/tmp', '//var/lib//x/./pages-2.img')).toBe('../../var/lib/x/pages-2.img');
  });

  it.each([
    ['tmp', staged],
    ['/tmp', 'var/lib/x'],
    ['/tmp/../var', staged],
    ['/tmp', '/var/../x'],
    ['/tmp', '/'],
  ])('refuses %s and %s', (tmp, file) => {
    expect(() => relativeLink(tmp, file)).toThrow(/relativeLink/);
  });
});

describe('parseContainerdTmp', () => {
  it.each([
    ['ok docker 123 /tmp\n', 0, { found: true, kind: 'docker', pid: 123, dir: '/tmp' }],
    ['ok system 9 /var/tmp/a b', 0, { found: true, kind: 'system', pid: 9, dir: '/var/tmp/a b' }],
    [
      "none no containerd process in this host's mount namespace\n",
      0,
      { found: false, reason: "no containerd process in this host's mount namespace" },
    ],
  ])('%j', (stdout, code, expected) => {
    expect(parseContainerdTmp(stdout, code)).toEqual(expected);
  });

  it('says what it got when the probe broke', () => {
    const parsed = parseContainerdTmp('', 127);
    expect(parsed.found).toBe(false);
    if (!parsed.found) expect(parsed.reason).toMatch(/exit 127/);
    expect(parseContainerdTmp('ok docker x tmp', 0).found).toBe(false);
  });

  it('runs in a plain sh and answers in one of its forms', () => {
    const out = execFileSync('/bin/sh', ['-c', containerdTmpScript()], { encoding: 'utf8' });
    expect(out).toMatch(/^(ok (docker|system) \d+ \/.*|none .+)\n$/);
  });
});

describe('parseStagedCheckpoint', () => {
  it.each([
    ['staged-pages\n', { path: 'staged-pages' }],
    [
      'noise\nfull-copy a link would not reach /x\n',
      { path: 'full-copy', reason: 'a link would not reach /x' },
    ],
    ['', undefined],
  ])('%j', (stdout, expected) => {
    expect(parseStagedCheckpoint(stdout)).toEqual(expected);
  });

  it('describes both paths', () => {
    expect(describeRestorePath({ path: 'staged-pages' })).toBe('staged pages');
    expect(describeRestorePath({ path: 'full-copy', reason: 'why' })).toBe('full copy (why)');
  });
});

describe('stagedCheckpointScript', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function world() {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'staged-pages-')));
    dirs.push(root);
    const staging = join(root, 'work/cp/staged');
    const checkpoint = join(root, 'docker/containers/id/checkpoints/cp');
    const containerdTmp = join(root, 'ctrd/tmp');
    mkdirSync(staging, { recursive: true });
    mkdirSync(containerdTmp, { recursive: true });
    for (const [name, text] of [
      ['inventory.img', 'inv'],
      ['pages-1.img', 'PAGES ONE'],
      ['pages-12.img', 'PAGES TWELVE'],
      ['pagemap-1.img', 'map'],
      ['descriptors.json', '{}'],
    ])
      writeFileSync(join(staging, name!), text!);
    return { staging, checkpoint, containerdTmp };
  }

  it('copies the small images, links the pages, and the links work from where containerd unpacks', () => {
    const { staging, checkpoint, containerdTmp } = world();
    const out = execFileSync('/bin/sh', ['-c', stagedCheckpointScript(staging, checkpoint, containerdTmp)], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('staged-pages');
    expect(readdirSync(checkpoint).sort()).toEqual(
      ['descriptors.json', 'inventory.img', 'pagemap-1.img', 'pages-1.img', 'pages-12.img'].sort(),
    );
    expect(lstatSync(join(checkpoint, 'inventory.img')).isFile()).toBe(true);
    expect(lstatSync(join(checkpoint, 'pages-1.img')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(checkpoint, 'pages-1.img'))).toBe(
      relativeLink(containerdTmp, join(staging, 'pages-1.img')),
    );
    // What containerd does: the directory copied, links as links, into <TMPDIR>/ctrd-checkpointX.
    const unpacked = join(containerdTmp, 'ctrd-checkpoint123');
    cpSync(checkpoint, unpacked, { recursive: true, verbatimSymlinks: true });
    expect(readFileSync(join(unpacked, 'pages-12.img'), 'utf8')).toBe('PAGES TWELVE');
    expect(readFileSync(join(unpacked, 'inventory.img'), 'utf8')).toBe('inv');
  });

  it('copies dot files too, and an empty staging directory gives an empty checkpoint directory', () => {
    const { staging, checkpoint, containerdTmp } = world();
    writeFileSync(join(staging, '.criu-extra'), 'dot');
    const out = execFileSync('/bin/sh', ['-c', stagedCheckpointScript(staging, checkpoint, containerdTmp)], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('staged-pages');
    expect(readFileSync(join(checkpoint, '.criu-extra'), 'utf8')).toBe('dot');
    const empty = join(staging, '..', 'empty');
    mkdirSync(empty);
    const emptyCheckpoint = join(checkpoint, '..', 'cp-empty');
    const again = execFileSync(
      '/bin/sh',
      ['-c', stagedCheckpointScript(empty, emptyCheckpoint, containerdTmp)],
      { encoding: 'utf8' },
    );
    expect(again.trim()).toBe('staged-pages');
    expect(readdirSync(emptyCheckpoint)).toEqual([]);
  });

  it('moves every image into the checkpoint directory when the links would not reach the staging directory', () => {
    const { staging, checkpoint } = world();
    // A TMPDIR that does not exist: no link can be checked from there.
    const out = execFileSync(
      '/bin/sh',
      ['-c', stagedCheckpointScript(staging, checkpoint, `${staging}/missing/tmp`)],
      { encoding: 'utf8' },
    );
    const parsed = parseStagedCheckpoint(out);
    expect(parsed?.path).toBe('full-copy');
    expect(lstatSync(join(checkpoint, 'pages-1.img')).isFile()).toBe(true);
    expect(readFileSync(join(checkpoint, 'pages-1.img'), 'utf8')).toBe('PAGES ONE');
    expect(readdirSync(staging)).toEqual([]);
  });
});
