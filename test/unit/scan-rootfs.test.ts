import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDpkgStatus, parseOsRelease, readInventory, ecosystemOf } from '../../src/scan/inventory.ts';
import { readRootfsFile } from '../../src/scan/rootfs.ts';
import { alpineFiles, debianFiles, dpkgStatus } from '../fixtures/scan-images.ts';
import type { FixtureFile } from '../fixtures/oci-image.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-scan-rootfs-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function rootfs(files: FixtureFile[]): Promise<string> {
  const root = path.join(tmp, `rootfs-${n++}`);
  await mkdir(root);
  for (const f of files) {
    const full = path.join(root, f.path);
    await mkdir(path.dirname(full), { recursive: true });
    if (f.type === 'symlink') await symlink(f.linkname!, full);
    else if (f.type === 'dir') await mkdir(full, { recursive: true });
    else await writeFile(full, f.content ?? '');
  }
  return root;
}

describe('reading a hostile rootfs', () => {
  it('follows symlinks inside the rootfs, re-rooted: an absolute or climbing target stays inside', async () => {
    const outside = path.join(tmp, 'outside-secret');
    await writeFile(outside, 'host secret\n');
    const root = await rootfs([
      { path: 'etc/real', content: 'inside\n' },
      { path: 'a/abs', type: 'symlink', linkname: '/etc/real' },
      { path: 'a/climb', type: 'symlink', linkname: '../../../../../../etc/real' },
      { path: 'a/escape', type: 'symlink', linkname: outside },
      { path: 'a/dir', type: 'symlink', linkname: '/etc' },
    ]);
    assert.equal((await readRootfsFile(root, 'a/abs', 100))?.toString(), 'inside\n');
    assert.equal((await readRootfsFile(root, 'a/climb', 100))?.toString(), 'inside\n');
    assert.equal((await readRootfsFile(root, 'a/dir/real', 100))?.toString(), 'inside\n');
    // The host path re-rooted at the rootfs does not exist there: nothing is read.
    assert.equal(await readRootfsFile(root, 'a/escape', 100), undefined);
  });

  it('a dpkg status that is a symlink to a host file reads the image\'s own file, never the host\'s', async () => {
    const root = await rootfs([
      { path: 'var/lib/dpkg/status', type: 'symlink', linkname: '/etc/shadow' },
      { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
    ]);
    const inv = await readInventory(root);
    assert.deepEqual(inv.packages, []);
    assert.deepEqual(inv.databases, []);
  });

  it('refuses symlink loops, FIFOs, directories and huge files', async () => {
    const root = await rootfs([
      { path: 'loop', type: 'symlink', linkname: 'loop' },
      { path: 'dir/', type: 'dir' },
      { path: 'big', content: Buffer.alloc(5000) },
    ]);
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    await assert.rejects(readRootfsFile(root, 'loop', 100), /too many levels of symbolic links/);
    await assert.rejects(readRootfsFile(root, 'fifo', 100), /it is a FIFO/);
    await assert.rejects(readRootfsFile(root, 'dir', 100), /it is a directory/);
    await assert.rejects(readRootfsFile(root, 'big', 4096), (e: Error & { code?: string }) => e.code === 'SCAN_FAILED' && /too large/.test(e.message));
    assert.equal(await readRootfsFile(root, 'big/x', 100), undefined);
    assert.equal(await readRootfsFile(root, 'missing', 100), undefined);
  });

  it('a huge package database fails the scan instead of being skipped', async () => {
    const root = await rootfs([{ path: 'lib/apk/db/installed', content: 'P:x\nV:1\n' }]);
    await assert.rejects(readInventory(root, { fileBytes: 4, packages: 10 }), /too large/);
  });
});

describe('inventory', () => {
  it('reads Debian: installed (and held, half-configured) packages, Source with its version, os-release through its symlink', async () => {
    const root = await rootfs([
      ...debianFiles([
        { name: 'bash', version: '5.2.15-2' },
        { name: 'held', version: '1.0-1', status: 'hold ok installed' },
        { name: 'half', version: '1.0-1', status: 'install ok half-configured' },
        { name: 'gone', version: '1.0-1', status: 'deinstall ok config-files' },
        { name: 'never', version: '1.0-1', status: 'purge ok not-installed' },
        { name: 'libfoo1', version: '1.0-1+b1', source: 'foo (1.0-1)', arch: 'arm64' },
      ]),
    ]);
    const inv = await readInventory(root);
    assert.equal(inv.os?.id, 'debian');
    assert.deepEqual(inv.databases, ['dpkg']);
    assert.deepEqual(inv.packages.map((p) => p.name), ['bash', 'held', 'half', 'libfoo1']);
    const foo = inv.packages[3]!;
    assert.equal(foo.ecosystem, 'Debian:12');
    assert.equal(foo.source, 'foo');
    assert.equal(foo.sourceVersion, '1.0-1');
    assert.equal(foo.purl, 'pkg:deb/debian/libfoo1@1.0-1%2Bb1?arch=arm64&distro=debian-12&upstream=foo%401.0-1');
  });

  it('reads distroless status.d files', async () => {
    const root = await rootfs([
      { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
      { path: 'var/lib/dpkg/status.d/base', content: 'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n' },
      { path: 'var/lib/dpkg/status.d/base.md5sums', content: 'abc  etc/x\n' },
      { path: 'var/lib/dpkg/status.d/libc6', content: 'Package: libc6\nSource: glibc\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n' },
    ]);
    const inv = await readInventory(root);
    assert.deepEqual(inv.packages.map((p) => `${p.name} ${p.version} ${p.source ?? '-'}`), ['base-files 12.4+deb12u5 -', 'libc6 2.36-9+deb12u4 glibc']);
  });

  it('reads Alpine: P, V, o, A; the ecosystem is Alpine:vMAJOR.MINOR', async () => {
    const inv = await readInventory(await rootfs(alpineFiles()));
    assert.deepEqual(inv.databases, ['apk']);
    assert.deepEqual(inv.packages.map((p) => [p.ecosystem, p.name, p.version, p.source]), [
      ['Alpine:v3.19', 'busybox', '1.36.1-r15', 'busybox'],
      ['Alpine:v3.19', 'ssl_client', '1.36.1-r15', 'busybox'],
      ['Alpine:v3.19', 'musl', '1.2.4_git20230717-r4', 'musl'],
    ]);
    assert.equal(inv.packages[0]!.purl, 'pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox');
  });

  it('reports an rpm database as unscanned, not as an empty inventory', async () => {
    const inv = await readInventory(await rootfs([{ path: 'var/lib/rpm/rpmdb.sqlite', content: 'SQLite format 3\0' }]));
    assert.deepEqual(inv.unscanned, ['rpm (/var/lib/rpm/rpmdb.sqlite)']);
  });

  it('fails on a malformed dpkg status rather than reading less', () => {
    const bad = [
      'Package: x\nStatus: install ok installed\n',
      'Package: X!\nStatus: install ok installed\nVersion: 1\n',
      'Package: x\nStatus: install ok installed\nVersion: 1 2\n',
      'Package: x\nPackage: y\nVersion: 1\n',
      ' continuation first\n',
      'no colon line\n',
      'Package: x\nStatus: installed\nVersion: 1\n',
      'Package: x\nVersion: 1\nSource: y (1 2)\n',
    ];
    for (const text of bad) assert.throws(() => parseDpkgStatus(text, 'Debian:12', undefined, 'status'), (e: Error & { code?: string }) => e.code === 'SCAN_FAILED', text);
  });

  it('parses os-release quoting and derives ecosystems', () => {
    const os = parseOsRelease('# c\nID="ubuntu"\nVERSION_ID="22.04"\nID_LIKE=debian\nPRETTY_NAME="Ubuntu \\"Jammy\\""\nbad line\n');
    assert.deepEqual(os, { id: 'ubuntu', versionId: '22.04', idLike: ['debian'], prettyName: 'Ubuntu "Jammy"' });
    assert.equal(ecosystemOf(os, 'Debian'), 'Ubuntu:22.04');
    assert.equal(ecosystemOf({ id: 'debian', idLike: [] }, 'Debian'), 'Debian');
    assert.equal(ecosystemOf({ id: 'debian', versionId: '12', idLike: [] }, 'Debian'), 'Debian:12');
    assert.equal(ecosystemOf(undefined, 'Alpine'), 'Alpine');
  });

  it('a dpkg status from the fixture helper round-trips', () => {
    const pkgs = parseDpkgStatus(dpkgStatus([{ name: 'a', version: '1:2.0-1', source: 'b' }]), 'Debian:12', undefined, 'status');
    assert.deepEqual(pkgs.map((p) => [p.name, p.version, p.source]), [['a', '1:2.0-1', 'b']]);
  });
});
