/**
 * Interop with the reference tools: one image, pushed by skopeo in every
 * form a registry serves (OCI with gzip or zstd layers, Docker schema 2,
 * a two-platform index) plus uncompressed layers, is pulled by berth and
 * checked out (berth mount), and the checkout must equal, entry for entry,
 * the rootfs `umoci unpack` makes of the same image (copied by skopeo into
 * an OCI layout): the same paths, types, modes (setuid, setgid, sticky
 * included), owners, file contents, symlink targets, and hard links.
 *
 * Not compared: mtimes (berth's objects all have mtime 0, like OSTree's,
 * because one inode is shared by every checkout), the checkout root itself,
 * and inode sharing beyond the image's hard links (berth shares one inode
 * between identical files, umoci does not).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pack } from 'tar-stream';
import {
  buildImage, hostOciArch, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, REF_NAME_ANNOTATION, sha256Hex,
  type BuiltImage, type FixtureFile, type FixtureImageSpec,
} from '../fixtures/oci-image.ts';
import { skopeoCopy, TestRegistry } from '../harness/registry.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** One line per entry: path, type, mode (with special bits), owner, and content hash or link target. */
interface Snapshot {
  lines: string[];
  /** path -> inode, for hard-link checks */
  inodes: Map<string, number>;
}

async function snapshot(root: string): Promise<Snapshot> {
  const lines: string[] = [];
  const inodes = new Map<string, number>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(root, p);
      const st = await fs.lstat(abs);
      const owner = `${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) {
        lines.push(`${p} symlink ${owner} -> ${await fs.readlink(abs)}`);
      } else if (st.isDirectory()) {
        lines.push(`${p} dir ${(st.mode & 0o7777).toString(8)} ${owner}`);
        await walk(p);
      } else if (st.isFile()) {
        const hash = createHash('sha256').update(await fs.readFile(abs)).digest('hex');
        lines.push(`${p} file ${(st.mode & 0o7777).toString(8)} ${owner} ${st.size} ${hash}`);
        inodes.set(p, st.ino);
      } else {
        lines.push(`${p} other ${st.mode.toString(8)}`);
      }
    }
  };
  await walk('');
  return { lines, inodes };
}

/** Paths umoci made hard links (several paths, one inode), grouped. */
function hardLinkGroups(s: Snapshot): string[][] {
  const byInode = new Map<number, string[]>();
  for (const [p, ino] of s.inodes) byInode.set(ino, [...(byInode.get(ino) ?? []), p]);
  return [...byInode.values()].filter((g) => g.length > 1);
}

/** An uncompressed layer tar written directly, for what the fixture builder cannot say (an entry under a symlinked parent). */
async function rawLayer(entries: { name: string; content?: string; mode: number }[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) {
    const header = { name: e.name, mode: e.mode, uid: 0, gid: 0, mtime: new Date(0) };
    if (e.content === undefined) p.entry({ ...header, type: 'directory' });
    else p.entry(header, e.content);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The interop fixture: special modes, odd owners, links of every kind, whiteouts and an opaque directory. */
async function interopSpec(): Promise<FixtureImageSpec> {
  const first: FixtureFile[] = [
    { path: 'usr/bin/suid-tool', content: '#!/bin/sh\necho setuid\n', mode: 0o4755 },
    { path: 'usr/bin/sgid-tool', content: '#!/bin/sh\necho setgid\n', mode: 0o2711, gid: 50 },
    { path: 'srv/odd', content: 'odd mode and owner\n', mode: 0o640, uid: 1234, gid: 5678 },
    { path: 'srv/empty', content: '' },
    { path: 'srv/shared/', type: 'dir', mode: 0o1777 },
    { path: 'srv/private/', type: 'dir', mode: 0o710, uid: 42, gid: 43 },
    { path: 'srv/hard1', content: 'one inode, three names\n', mode: 0o600, uid: 7, gid: 8 },
    { path: 'srv/hard2', type: 'hardlink', linkname: 'srv/hard1' },
    { path: 'srv/private/hard3', type: 'hardlink', linkname: 'srv/hard1' },
    { path: 'opt/data/a', content: 'a\n' },
    { path: 'opt/data/b', content: 'b\n' },
    { path: 'opt/keep/x', content: 'x\n' },
    { path: 'opt/keep/sub/y', content: 'y\n' },
    { path: 'opt/gone/z', content: 'z\n' },
    { path: 'usr/lib/libbase.so', content: 'base\n' },
    { path: 'lib', type: 'symlink', linkname: 'usr/lib' },
    { path: 'links/absolute', type: 'symlink', linkname: '/etc/passwd' },
    { path: 'links/relative', type: 'symlink', linkname: '../opt/data/b' },
    { path: 'links/dangling', type: 'symlink', linkname: 'no/such/file' },
    { path: 'links/owned', type: 'symlink', linkname: 'absolute', uid: 7, gid: 8 },
    { path: 'links/replaced', type: 'symlink', linkname: '/srv/odd' },
    { path: 'etc/alt', type: 'symlink', linkname: '../srv/shared' },
  ];
  const second: FixtureFile[] = [
    { path: 'opt/data/.wh.a' }, // whiteout of a file
    { path: 'opt/.wh.gone' }, // whiteout of a directory and its contents
    { path: 'opt/keep/.wh..wh..opq' }, // opaque: x and sub/ go, new stays
    { path: 'opt/keep/new', content: 'new\n' },
    { path: 'srv/odd', content: 'replaced in the upper layer\n', mode: 0o600, uid: 1234, gid: 5678 },
    { path: 'links/replaced', content: 'a file now\n' }, // a file over a symlink
    { path: 'var/h1', content: 'linked in layer 2\n', mode: 0o4750 },
    { path: 'var/h2', type: 'hardlink', linkname: 'var/h1' },
  ];
  return {
    layers: [first, second],
    rawLayers: [
      // Through the symlink /lib -> usr/lib, for a new file and a whiteout: both resolve it inside the root.
      await rawLayer([
        { name: 'lib/libextra.so', content: 'extra\n', mode: 0o755 },
        { name: 'lib/.wh.libbase.so', content: '', mode: 0o644 },
      ]),
      // A directory entry where a symlink to a directory was replaces it (umoci without --keep-dirlinks).
      await rawLayer([
        { name: 'etc/alt/', mode: 0o750 },
        { name: 'etc/alt/conf', content: 'alt\n', mode: 0o644 },
      ]),
    ],
    config: { Cmd: ['/bin/sh'], Labels: { 'org.example.fixture': 'interop' } },
  };
}

/** The other platform of the index: not this host's. */
const otherArch = hostOciArch() === 'arm64' ? 'amd64' : 'arm64';

describe('pull interop with skopeo and umoci', () => {
  let work: string;
  let registry: TestRegistry;
  let policy: string;
  let layout: string;
  let image: BuiltImage;
  let raw: BuiltImage;
  let foreign: BuiltImage;
  let expected: Snapshot | undefined;
  let n = 0;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-interop-'));
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    layout = path.join(work, 'layout');
    registry = await TestRegistry.start();
    const spec = await interopSpec();
    image = await buildImage(layout, 'interop', spec);
    raw = await buildImage(path.join(work, 'raw'), 'interop', { ...spec, compression: 'none' });
    foreign = await buildImage(layout, 'foreign', { architecture: otherArch, layers: [[{ path: 'etc/platform', content: `${otherArch}\n` }]], config: { Cmd: ['/bin/sh'] } });
    await addIndex(layout, 'multi', [
      { image, platform: { architecture: hostOciArch(), os: 'linux' } },
      { image: foreign, platform: { architecture: otherArch, os: 'linux' } },
    ]);
    await skopeoCopy(`oci:${layout}:interop`, `docker://${registry.host}/interop/oci-gzip:1`, ['--dest-tls-verify=false']);
  });

  after(async () => {
    // berthSnapshot unmounts as it goes; a failure half-way must not leave a mount on this host.
    const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
    for (const line of info.split('\n')) {
      const mountPoint = line.split(' ')[4];
      if (work && mountPoint?.startsWith(`${work}/mnt-`)) await run('umount', [mountPoint]);
    }
    await registry?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  /** berth pulls `ref` into a fresh root (no layer is already stored), mounts it and snapshots the checkout. */
  const berthSnapshot = async (ref: string, extra: string[] = []): Promise<{ snap: Snapshot; pulled: { digest: string; fetchedLayers: number } }> => {
    const root = path.join(work, `root-${++n}`);
    const berth = (...args: string[]) => run(process.execPath, [BERTH, '--root', root, ...args]);
    const p = await berth('pull', '--json', '--policy', policy, '--tls-verify=false', ...extra, ref);
    assert.equal(p.code, 0, `berth pull ${ref}: ${p.stderr}`);
    const pulled = JSON.parse(p.stdout) as { digest: string; fetchedLayers: number };
    const dir = path.join(work, `mnt-${n}`);
    await fs.mkdir(dir);
    const m = await berth('mount', pulled.digest, dir);
    assert.equal(m.code, 0, m.stderr);
    try {
      const snap = await snapshot(dir);
      return { snap, pulled };
    } finally {
      const u = await berth('umount', dir);
      assert.equal(u.code, 0, u.stderr);
    }
  };

  /** skopeo copies `ref` into an OCI layout (this host's platform), umoci unpacks it. */
  const umociSnapshot = async (ref: string, copyArgs: string[] = []): Promise<Snapshot> => {
    const dir = path.join(work, `umoci-${++n}`);
    await fs.mkdir(dir);
    await skopeoCopy(ref, `oci:${dir}/image:x`, [...(ref.startsWith('docker://') ? ['--src-tls-verify=false'] : []), ...copyArgs]);
    const u = await run('umoci', ['unpack', '--image', `${dir}/image:x`, `${dir}/bundle`]);
    assert.equal(u.code, 0, `umoci unpack: ${u.stderr}`);
    return snapshot(path.join(dir, 'bundle', 'rootfs'));
  };

  const compare = async (ref: string, copyArgs: string[] = []) => {
    const [{ snap, pulled }, want] = await Promise.all([berthSnapshot(ref), umociSnapshot(ref, copyArgs)]);
    assert.equal(pulled.fetchedLayers, image.layers.length, 'every layer was downloaded and decompressed');
    assert.deepEqual(snap.lines, want.lines, `berth's checkout of ${ref} differs from umoci's rootfs`);
    const groups = hardLinkGroups(want);
    assert.ok(groups.length >= 2, 'the fixture has hard links');
    for (const g of groups) assert.equal(new Set(g.map((p) => snap.inodes.get(p))).size, 1, `hard links ${g.join(', ')} share one inode in berth's checkout`);
    expected ??= want;
    assert.deepEqual(want.lines, expected.lines, 'every form of the image is the same tree');
    return pulled;
  };

  it('the fixture means what it says (checked on umoci, the reference)', async () => {
    const s = await umociSnapshot(`docker://${registry.host}/interop/oci-gzip:1`);
    const find = (p: string) => s.lines.find((l) => l.startsWith(`${p} `));
    assert.match(find('usr/bin/suid-tool') ?? '', / file 4755 0:0 /);
    assert.match(find('usr/bin/sgid-tool') ?? '', / file 2711 0:50 /);
    assert.match(find('srv/odd') ?? '', / file 600 1234:5678 28 /);
    assert.match(find('srv/shared') ?? '', / dir 1777 0:0$/);
    assert.match(find('srv/private') ?? '', / dir 710 42:43$/);
    assert.equal(find('links/absolute'), 'links/absolute symlink 0:0 -> /etc/passwd');
    assert.equal(find('links/relative'), 'links/relative symlink 0:0 -> ../opt/data/b');
    assert.equal(find('links/owned'), 'links/owned symlink 7:8 -> absolute');
    assert.match(find('links/replaced') ?? '', / file 644 /);
    assert.match(find('usr/lib/libextra.so') ?? '', / file 755 /, 'written through the /lib symlink');
    assert.equal(find('lib'), 'lib symlink 0:0 -> usr/lib');
    assert.equal(find('usr/lib/libbase.so'), undefined, 'whited out through the /lib symlink');
    assert.match(find('etc/alt') ?? '', / dir 750 0:0$/, 'the directory replaced the symlink');
    assert.match(find('etc/alt/conf') ?? '', / file 644 /);
    assert.equal(s.lines.filter((l) => l.startsWith('srv/shared/')).length, 0, 'nothing went through the replaced symlink');
    for (const gone of ['opt/data/a', 'opt/gone', 'opt/keep/x', 'opt/keep/sub']) assert.equal(find(gone), undefined, `${gone} is whited out`);
    assert.ok(find('opt/keep/new') && find('opt/data/b'));
    assert.deepEqual(hardLinkGroups(s).map((g) => g.sort()).sort(), [['srv/hard1', 'srv/hard2', 'srv/private/hard3'], ['var/h1', 'var/h2']]);
  });

  it('OCI manifest, gzip layers', async () => {
    const pulled = await compare(`docker://${registry.host}/interop/oci-gzip:1`);
    assert.equal(pulled.digest, image.manifestDigest, 'skopeo kept the manifest as built');
  });

  it('OCI manifest, zstd layers', async () => {
    // A registry of its own: skopeo would rather mount the gzip blobs already in the other one than recompress.
    const zstdRegistry = await TestRegistry.start();
    try {
      const ref = `docker://${zstdRegistry.host}/interop/oci-zstd:1`;
      await skopeoCopy(`oci:${layout}:interop`, ref, ['--dest-tls-verify=false', '--dest-compress-format', 'zstd']);
      const manifest = await registryManifest(zstdRegistry, 'interop/oci-zstd', '1');
      assert.deepEqual(new Set(manifest.layers.map((l) => l.mediaType)), new Set(['application/vnd.oci.image.layer.v1.tar+zstd']));
      // umoci 0.4 cannot read zstd layers: skopeo recompresses them to gzip for it (same tars, same diff_ids); berth reads the zstd ones.
      await compare(ref, ['--dest-compress-format', 'gzip']);
    } finally {
      await zstdRegistry.stop();
    }
  });

  it('Docker schema 2 manifest, gzip layers', async () => {
    const ref = `docker://${registry.host}/interop/v2s2:1`;
    await skopeoCopy(`oci:${layout}:interop`, ref, ['--dest-tls-verify=false', '--format', 'v2s2']);
    const manifest = await registryManifest(registry, 'interop/v2s2', '1');
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    await compare(ref);
  });

  it('uncompressed layers: an OCI layout from skopeo, and OCI and Docker manifests in the registry', async () => {
    // skopeo always compresses layers it pushes to a registry; into an OCI layout it can keep them as they are.
    const dir = path.join(work, 'uncompressed');
    await skopeoCopy(`oci:${raw.layout}:interop`, `oci:${dir}:interop`, ['--dest-oci-accept-uncompressed-layers']);
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const m = JSON.parse(await fs.readFile(path.join(dir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
    assert.deepEqual(new Set(m.layers.map((l) => l.mediaType)), new Set(['application/vnd.oci.image.layer.v1.tar']));
    await compare(`oci:${dir}:interop`);

    // ... so the registry gets them through the distribution API itself.
    await pushUncompressed(registry, raw, 'interop/raw-oci', 'oci');
    await pushUncompressed(registry, raw, 'interop/raw-v2s2', 'docker');
    assert.equal((await registryManifest(registry, 'interop/raw-v2s2', '1')).layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
    await compare(`docker://${registry.host}/interop/raw-oci:1`);
    await compare(`docker://${registry.host}/interop/raw-v2s2:1`);
  });

  it('a two-platform index: this host gets its own image; --platform picks the other', async () => {
    const ref = `docker://${registry.host}/interop/multi:1`;
    await skopeoCopy(`oci:${layout}:multi`, ref, ['--dest-tls-verify=false', '--all']);
    assert.equal((await registryManifest(registry, 'interop/multi', '1')).mediaType, MEDIA_TYPE_INDEX);
    const pulled = await compare(ref);
    assert.equal(pulled.digest, image.manifestDigest, "the host platform's manifest, not the index");

    const { snap, pulled: other } = await berthSnapshot(ref, ['--platform', `linux/${otherArch}`]);
    assert.equal(other.digest, foreign.manifestDigest);
    assert.ok(snap.lines.some((l) => l.startsWith(`etc/platform file 644 0:0 ${otherArch.length + 1} `)), 'the other platform is another tree');
  });
});

/** The manifest a registry serves for repo:tag. */
async function registryManifest(registry: TestRegistry, repo: string, tag: string): Promise<{ mediaType: string; layers: { mediaType: string }[] }> {
  const accept = ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { headers: { accept } });
  assert.equal(res.status, 200, `GET manifest ${repo}:${tag}`);
  return (await res.json()) as { mediaType: string; layers: { mediaType: string }[] };
}

/** Push an uncompressed fixture (its blobs as they are) as repo:1, with an OCI or a Docker schema 2 manifest. */
async function pushUncompressed(registry: TestRegistry, image: BuiltImage, repo: string, kind: 'oci' | 'docker'): Promise<void> {
  const blob = (digest: string) => fs.readFile(path.join(image.layout, 'blobs', 'sha256', digest.slice(7)));
  const upload = async (digest: string) => {
    const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202, `start upload to ${repo}`);
    await start.arrayBuffer();
    const location = new URL(start.headers.get('location')!, registry.url);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: await blob(digest) });
    assert.equal(put.status, 201, `upload ${digest}: ${await put.text()}`);
  };
  for (const d of [image.configDigest, ...image.layers.map((l) => l.digest)]) await upload(d);
  const manifest =
    kind === 'oci'
      ? await blob(image.manifestDigest)
      : Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: (await blob(image.configDigest)).length, digest: image.configDigest },
            layers: image.layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: l.size, digest: l.digest })),
          }),
        );
  const mediaType = kind === 'oci' ? MEDIA_TYPE_MANIFEST : 'application/vnd.docker.distribution.manifest.v2+json';
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/1`, { method: 'PUT', headers: { 'content-type': mediaType }, body: manifest });
  assert.equal(res.status, 201, `put manifest ${repo}:1: ${await res.text()}`);
}

/** Add an image index over `entries` to the layout, tagged `tag`. */
async function addIndex(layout: string, tag: string, entries: { image: BuiltImage; platform: { architecture: string; os: string } }[]): Promise<void> {
  const manifests = [];
  for (const { image, platform } of entries) {
    const size = (await fs.stat(path.join(layout, 'blobs', 'sha256', image.manifestDigest.slice(7)))).size;
    manifests.push({ mediaType: MEDIA_TYPE_MANIFEST, digest: image.manifestDigest, size, platform });
  }
  const bytes = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests });
  const hex = sha256Hex(bytes);
  await fs.writeFile(path.join(layout, 'blobs', 'sha256', hex), bytes);
  const indexFile = path.join(layout, 'index.json');
  const top = JSON.parse(await fs.readFile(indexFile, 'utf8')) as { manifests: unknown[] };
  top.manifests.push({ mediaType: MEDIA_TYPE_INDEX, digest: `sha256:${hex}`, size: Buffer.byteLength(bytes), annotations: { [REF_NAME_ANNOTATION]: tag } });
  await fs.writeFile(indexFile, JSON.stringify(top));
}
