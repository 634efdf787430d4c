/**
 * Extended attributes from layers (PAX SCHILY.xattr.*): user.* and
 * security.capability are set on the object's inode, so hard-linked
 * checkouts carry them (a file capability works from every container);
 * other namespaces stay in the store only, with a note. Copies (--copy onto
 * another filesystem) get them too. Without setfattr, a layer that needs it
 * is refused and nothing of it is stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { hasCommand } from '../harness/util.ts';
import { cleanup, countObjects, imageOf, rejectsWith, sandbox, streamOf, tarOf, type Sandbox } from './store-helpers.ts';

const root = process.getuid?.() === 0;
const skip = !hasCommand('setfattr') ? 'setfattr (package attr) is not installed' : !root ? 'setting security.capability and trusted.* needs root' : false;

/** VFS_CAP_REVISION_2 | effective, permitted = cap_net_raw (bit 13), little-endian. */
const CAP_NET_RAW_EP = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** The file's xattrs as getfattr dumps them, name -> base64 value. */
function xattrsOf(file: string): Record<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '--no-dereference', '-d', '-m', '-', '-e', 'base64', file], { encoding: 'utf8' });
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 3)]),
  );
}

after(cleanup);

describe('store: extended attributes', { skip }, () => {
  let box: Sandbox;
  let store: Store;
  let tar: Buffer;
  const notes: string[] = [];

  before(async () => {
    box = await sandbox();
    store = await Store.open(box.root);
    tar = await tarOf([
      {
        name: 'bin/ping',
        data: 'ELF-ping',
        mode: 0o755,
        pax: {
          'SCHILY.xattr.security.capability': CAP_NET_RAW_EP.toString('latin1'),
          'SCHILY.xattr.user.note': 'hello',
          'SCHILY.xattr.trusted.evil': 'x',
        },
      },
      { name: 'bin/plain', data: 'ELF-ping', mode: 0o755 },
    ]);
    const image = imageOf([tar]);
    await store.importLayer(image.diffIds[0]!, streamOf(tar), { onSkip: (p, why) => notes.push(`${p}: ${why}`) });
    await store.putImage({ ...image, signatures: [] });
  });

  it('sets user.* and security.capability on the object, so a hard-linked checkout has the capability', async () => {
    const image = imageOf([tar]);
    const co = join(box.base, 'co');
    await store.checkout(image.manifestDigest, co);
    const x = xattrsOf(join(co, 'bin/ping'));
    assert.equal(x['security.capability'], CAP_NET_RAW_EP.toString('base64'));
    assert.equal(x['user.note'], Buffer.from('hello').toString('base64'));
    assert.equal(x['trusted.evil'], undefined, 'trusted.* is never set on the host');
    assert.match(execFileSync('getcap', [join(co, 'bin/ping')], { encoding: 'utf8' }), /cap_net_raw[=+]ep/);
    // Same content, other xattrs: another object, without any.
    assert.deepEqual(xattrsOf(join(co, 'bin/plain')), {});
    const [a, b] = [await stat(join(co, 'bin/ping')), await stat(join(co, 'bin/plain'))];
    assert.notEqual(a.ino, b.ino);
    assert.ok(a.nlink >= 2, 'the checkout is a hard link to the object that carries the xattrs');
  });

  it('notes what it keeps in the store only', () => {
    assert.deepEqual(notes, ['bin/ping: extended attributes trusted.evil are kept in the store but not set on the file (berth sets user.* and security.capability)']);
  });

  it('verifies (the key covers every xattr, applied or not)', async () => {
    const r = await store.verify();
    assert.equal(r.ok, true, JSON.stringify(r.problems));
  });

  it('gives copies the xattrs too (--copy onto a tmpfs)', async (t) => {
    const mnt = join(box.base, 'tmpfs');
    await mkdir(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'berth-test', mnt], { stdio: 'pipe' });
    } catch (e) {
      return t.skip(`cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}`);
    }
    try {
      const co = join(mnt, 'co');
      const r = await store.checkout(imageOf([tar]).manifestDigest, co, { copy: true });
      assert.equal(r.copied, true);
      const x = xattrsOf(join(co, 'bin/ping'));
      assert.equal(x['security.capability'], CAP_NET_RAW_EP.toString('base64'));
      assert.equal(x['trusted.evil'], undefined);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('refuses a malformed file capability, naming the entry, and stores nothing of the layer', async () => {
    const other = await sandbox();
    const s = await Store.open(other.root);
    const bad = await tarOf([
      { name: 'a', data: 'a' },
      { name: 'bin/bad', data: 'x', pax: { 'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00' } },
    ]);
    await rejectsWith(s.importLayer(imageOf([bad]).diffIds[0]!, streamOf(bad)), 'LAYER_INVALID', /"?bin\/bad"? has an invalid file capability \(security\.capability\): it is 5 bytes long, not 20/);
    assert.equal(await s.hasLayer(imageOf([bad]).diffIds[0]!), false);
    assert.equal(await countObjects(s.dir).catch(() => 0), 0);
  });

  it('without setfattr, refuses the layer and stores nothing of it', async () => {
    const other = await sandbox();
    const s = await Store.open(other.root);
    const path = process.env['PATH'];
    process.env['PATH'] = other.sentinel;
    try {
      await rejectsWith(s.importLayer(imageOf([tar]).diffIds[0]!, streamOf(tar)), 'MISSING_TOOL', /setfattr is not installed/);
    } finally {
      process.env['PATH'] = path;
    }
    assert.equal(await s.hasLayer(imageOf([tar]).diffIds[0]!), false);
    assert.equal(await countObjects(s.dir).catch(() => 0), 0);
  });
});
