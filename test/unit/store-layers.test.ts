import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { cleanup, exists, listTree, rejectsWith, sandbox, storeImage, tarOf, type Spec } from './store-helpers.ts';

after(cleanup);

/** Check out an image made of these layers and list the result. */
async function merged(layers: Spec[][]): Promise<{ tree: Map<string, string>; co: string; snapshot: () => Promise<string>; before: string }> {
  const box = await sandbox();
  const before = await box.snapshot();
  const store = await Store.open(box.root);
  const image = await storeImage(store, await Promise.all(layers.map((l) => tarOf(l))));
  const co = join(box.base, 'co');
  await store.checkout(image.manifestDigest, co);
  return { tree: await listTree(co), co, snapshot: box.snapshot, before };
}

describe('store checkout: layering', () => {
  it('whiteouts remove lower files and directories; opaque directories hide lower contents', async () => {
    const { tree } = await merged([
      [
        { name: 'a/x', data: 'x' },
        { name: 'a/y', data: 'y' },
        { name: 'b/old', data: 'old' },
        { name: 'b/sub/lower', data: 'lower' },
        { name: 'c/deep/f', data: 'f' },
        { name: 'keep', data: 'keep' },
      ],
      [
        { name: 'a/.wh.x', data: '' },
        { name: 'b/.wh..wh..opq', data: '' },
        { name: 'b/new', data: 'new' },
        { name: '.wh.c', data: '' },
        { name: 'a/.wh.missing', data: '' },
        { name: 'nothere/.wh.x', data: '' },
      ],
    ]);
    assert.deepEqual([...tree.keys()], ['a', 'a/y', 'b', 'b/new', 'keep']);
  });

  it('whiteouts only hide lower layers: a file of the same layer survives, whatever the order', async () => {
    const { tree } = await merged([
      [{ name: 'd/f', data: 'lower' }, { name: 'g/lower', data: 'lower' }],
      [
        { name: 'd/f', data: 'upper' },
        { name: 'd/.wh.f', data: '' },
        { name: 'g/upper', data: 'upper' },
        { name: 'g/.wh..wh..opq', data: '' },
      ],
    ]);
    assert.equal(tree.get('d/f'), 'file 644 0:0 upper');
    assert.deepEqual([...tree.keys()].filter((k) => k.startsWith('g')), ['g', 'g/upper']);
  });

  it('a file replaces a directory (and its contents), and a directory replaces a file', async () => {
    const { tree } = await merged([
      [
        { name: 'was-dir/child', data: 'c' },
        { name: 'was-dir/sub/grandchild', data: 'g' },
        { name: 'was-file', data: 'f' },
        { name: 'was-link', type: 'symlink', linkname: '/etc' },
      ],
      [
        { name: 'was-dir', data: 'now a file' },
        { name: 'was-file/', type: 'directory', mode: 0o711 },
        { name: 'was-file/inside', data: 'i' },
        { name: 'was-link/', type: 'directory' },
      ],
    ]);
    assert.equal(tree.get('was-dir'), 'file 644 0:0 now a file');
    assert.equal(tree.get('was-file'), 'dir 711 0:0');
    assert.equal(tree.get('was-file/inside'), 'file 644 0:0 i');
    assert.equal(tree.get('was-link'), 'dir 755 0:0');
    assert.ok(![...tree.keys()].some((k) => k.startsWith('was-dir/')));
    assert.ok(!tree.has('etc'));
  });

  it('a directory entry over a directory keeps its contents and takes the new metadata', async () => {
    const { tree } = await merged([[{ name: 'd/f', data: 'f' }], [{ name: 'd/', type: 'directory', mode: 0o700, uid: 5, gid: 6 }]]);
    assert.equal(tree.get('d'), 'dir 700 5:6');
    assert.equal(tree.get('d/f'), 'file 644 0:0 f');
  });

  it('entries below a symlinked parent land inside the root, in the link target', async () => {
    const { tree, snapshot, before } = await merged([
      [
        { name: 'real/', type: 'directory' },
        { name: 'lib', type: 'symlink', linkname: 'real' },
        { name: 'abs', type: 'symlink', linkname: '/real' },
        { name: 'up', type: 'symlink', linkname: '../../../../..' },
      ],
      [
        { name: 'lib/a', data: 'via relative' },
        { name: 'abs/b', data: 'via absolute' },
        { name: 'up/etc/shadow', data: 'not the host' },
        { name: 'up/sentinel/canary', data: 'not the sentinel' },
      ],
    ]);
    assert.equal(tree.get('real/a'), 'file 644 0:0 via relative');
    assert.equal(tree.get('real/b'), 'file 644 0:0 via absolute');
    assert.equal(tree.get('etc/shadow'), 'file 644 0:0 not the host');
    assert.equal(tree.get('sentinel/canary'), 'file 644 0:0 not the sentinel');
    assert.equal(tree.get('lib'), 'symlink real');
    assert.equal(await snapshot(), before);
  });

  it('whiteouts through a symlinked parent stay inside the root', async () => {
    const { tree, snapshot, before } = await merged([
      [{ name: 'etc/keep', data: 'k' }, { name: 'etc/gone', data: 'g' }, { name: 'up', type: 'symlink', linkname: '../..' }],
      [{ name: 'up/etc/.wh.gone', data: '' }, { name: 'up/sentinel/.wh.canary', data: '' }],
    ]);
    assert.deepEqual([...tree.keys()], ['etc', 'etc/keep', 'up']);
    assert.equal(await snapshot(), before);
  });

  it('symlink loops and parents that are files are refused at checkout, and the target is removed', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const loop = await storeImage(store, [
      await tarOf([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }]),
      await tarOf([{ name: 'a/x', data: 'x' }]),
    ]);
    await rejectsWith(store.checkout(loop.manifestDigest, join(box.base, 'co1')), 'LAYER_INVALID', /too many levels of symbolic links/);
    assert.equal(await exists(join(box.base, 'co1')), false);
    const file = await storeImage(store, [await tarOf([{ name: 'f', data: 'f' }]), await tarOf([{ name: 'f/x', data: 'x' }])]);
    await rejectsWith(store.checkout(file.manifestDigest, join(box.base, 'co2')), 'LAYER_INVALID', /parent that is not a directory/);
    assert.equal(await exists(join(box.base, 'co2')), false);
  });
});
