import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseExportsManifest } from '../../src/render/exports-manifest.ts';
import { readExports, DEFAULT_EXPORTS_LIMITS } from '../../src/render/exports.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-exports-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh rootfs with the given files below it (string = file content, null = directory). */
async function rootfs(files: Record<string, string | null> = {}): Promise<string> {
  const root = path.join(tmp, `rootfs-${n++}`);
  await mkdir(root);
  for (const [p, content] of Object.entries(files)) {
    const full = path.join(root, p);
    await mkdir(content === null ? full : path.dirname(full), { recursive: true });
    if (content !== null) await writeFile(full, content);
  }
  return root;
}

describe('readExports', () => {
  it('reads the templates, the manifest and hostfs entries with their types', async () => {
    const root = await rootfs({
      'exports/config.json.template': '{"x": "$A"}',
      'exports/service.template': '[Service]\nExecStart=$EXEC_START\n',
      'exports/tmpfiles.template': 'd /run/x - - - -\n',
      'exports/manifest.json': '{"version": "1.0", "defaultValues": {"A": "1"}, "extra": true}',
      'exports/hostfs/etc/app/app.conf': 'a=1\n',
      'exports/hostfs/usr/local/bin/': null,
    });
    await symlink('../../../etc/app/app.conf', path.join(root, 'exports/hostfs/usr/local/bin/link'));
    const ex = await readExports(root);
    assert.equal(ex.configTemplate, '{"x": "$A"}');
    assert.equal(ex.configJson, undefined);
    assert.match(ex.serviceTemplate!, /ExecStart/);
    assert.equal(ex.tmpfilesTemplate, 'd /run/x - - - -\n');
    assert.deepEqual(ex.manifest?.defaultValues, { A: '1' });
    assert.deepEqual(ex.warnings, ['/exports/manifest.json: unknown key "extra" ignored']);
    assert.deepEqual(
      ex.hostfs.map((e) => [e.type, e.path]),
      [
        ['dir', '/etc'],
        ['dir', '/etc/app'],
        ['file', '/etc/app/app.conf'],
        ['dir', '/usr'],
        ['dir', '/usr/local'],
        ['dir', '/usr/local/bin'],
        ['symlink', '/usr/local/bin/link'],
      ],
    );
    const link = ex.hostfs.find((e) => e.type === 'symlink');
    assert.equal(link?.type === 'symlink' && link.target, '../../../etc/app/app.conf');
  });

  it('gives empty exports for an image without /exports', async () => {
    assert.deepEqual(await readExports(await rootfs({ 'etc/hostname': 'x' })), { hostfs: [], warnings: [] });
  });

  it('refuses /exports symlinked to the host (never reads /etc)', async () => {
    const root = await rootfs();
    await symlink('/etc', path.join(root, 'exports'));
    await assert.rejects(readExports(root), { code: 'UNSAFE_PATH', message: /"\/exports" .*symbolic link/ });
  });

  it('refuses a template, manifest or hostfs that is a symlink, even one inside the rootfs', async () => {
    for (const name of ['config.json', 'service.template', 'manifest.json', 'hostfs']) {
      const root = await rootfs({ 'exports/': null, 'inside.txt': '{}' });
      await symlink(name === 'hostfs' ? '/etc' : '../inside.txt', path.join(root, 'exports', name));
      await assert.rejects(readExports(root), { code: 'UNSAFE_PATH', message: new RegExp(`/exports/${name.replace('.', '\\.')}.*symbolic link`) }, name);
    }
  });

  it('lists a symlinked directory inside hostfs as a link and never walks it', async () => {
    const root = await rootfs({ 'exports/hostfs/': null });
    await symlink('/etc', path.join(root, 'exports/hostfs/etc'));
    const ex = await readExports(root);
    assert.deepEqual(ex.hostfs, [{ type: 'symlink', path: '/etc', target: '/etc' }]);
  });

  it('refuses a FIFO without blocking on it', async () => {
    const root = await rootfs({ 'exports/': null });
    execFileSync('mkfifo', [path.join(root, 'exports/service.template')]);
    await assert.rejects(readExports(root), { code: 'UNSAFE_PATH', message: /FIFO/ });
    const root2 = await rootfs({ 'exports/hostfs/': null });
    execFileSync('mkfifo', [path.join(root2, 'exports/hostfs/pipe')]);
    await assert.rejects(readExports(root2), { code: 'UNSAFE_PATH', message: /FIFO/ });
  });

  it('caps sizes and counts', async () => {
    const limits = { ...DEFAULT_EXPORTS_LIMITS, templateBytes: 10, hostfsFileBytes: 4, hostfsTotalBytes: 6, hostfsEntries: 3 };
    await assert.rejects(readExports(await rootfs({ 'exports/service.template': 'x'.repeat(11) }), limits), { code: 'MANIFEST_INVALID', message: /too large/ });
    await assert.rejects(readExports(await rootfs({ 'exports/hostfs/a': '12345' }), limits), /too large/);
    await assert.rejects(readExports(await rootfs({ 'exports/hostfs/a': '1234', 'exports/hostfs/b': '1234' }), limits), /more than 6 bytes in all/);
    await assert.rejects(readExports(await rootfs({ 'exports/hostfs/a': '', 'exports/hostfs/b': '', 'exports/hostfs/c': '', 'exports/hostfs/d': '' }), limits), /more than 3 entries/);
  });

  it('refuses control characters in hostfs names and non-UTF-8 templates', async () => {
    await assert.rejects(readExports(await rootfs({ 'exports/hostfs/bad\nname': '' })), { code: 'UNSAFE_PATH', message: /control character/ });
    const root = await rootfs({ 'exports/': null });
    await writeFile(path.join(root, 'exports/service.template'), Buffer.from([0xff, 0xfe]));
    await assert.rejects(readExports(root), /not UTF-8/);
  });
});

describe('manifest.json', () => {
  it('parses every field with its default', () => {
    assert.deepEqual(parseExportsManifest('{}').manifest, { defaultValues: {}, installedFilesTemplate: [], renameFiles: {}, noContainerService: false, useLinks: true });
    const m = parseExportsManifest(JSON.stringify({ version: '1.0', defaultValues: { A: 'x' }, installedFilesTemplate: ['/a'], renameFiles: { '/a': '/b' }, noContainerService: true, useLinks: false })).manifest;
    assert.deepEqual(m, { version: '1.0', defaultValues: { A: 'x' }, installedFilesTemplate: ['/a'], renameFiles: { '/a': '/b' }, noContainerService: true, useLinks: false });
  });
  it('refuses wrong types, naming the field', () => {
    for (const [text, re] of [
      ['[]', /not a JSON object/],
      ['{', /not JSON/],
      ['{"defaultValues": {"PORT": 8080}}', /"defaultValues.PORT" must be a string/],
      ['{"defaultValues": []}', /"defaultValues" must be an object/],
      ['{"installedFilesTemplate": "/a"}', /list of strings/],
      ['{"renameFiles": {"/a": null}}', /"renameFiles.\/a" must be a string/],
      ['{"noContainerService": "yes"}', /true or false/],
      ['{"version": 1}', /"version" must be a string/],
    ] as const) {
      assert.throws(() => parseExportsManifest(text), { code: 'MANIFEST_INVALID', message: re }, text);
    }
  });
  it('keeps a "__proto__" key as data', () => {
    const m = parseExportsManifest('{"defaultValues": {"__proto__": "x"}}').manifest;
    assert.equal(Object.getPrototypeOf(m.defaultValues), Object.prototype);
    assert.deepEqual(Object.keys(m.defaultValues), ['__proto__']);
  });
});
