import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  findRegistry, loadRegistriesConf, parseRegistriesConf, pullSources, shortNameCandidates,
} from '../../src/image/registries-conf.ts';
import { parseDockerReference, type ShortNameReference } from '../../src/image/reference.ts';
import { formatReference, parseImageReference, repositoryBaseName } from '../../src/transport/index.ts';

const D = `sha256:${'b'.repeat(64)}`;

function short(input: string): ShortNameReference {
  const r = parseImageReference(input);
  assert.equal(r.transport, 'short-name', input);
  return r as ShortNameReference;
}

const names = (refs: { ref: Parameters<typeof formatReference>[0] }[]) => refs.map((s) => formatReference(s.ref));

describe('references: short names and archives', () => {
  it('treats names without a registry host as short names', () => {
    assert.deepEqual(parseImageReference('busybox'), { transport: 'short-name', name: 'busybox', tag: 'latest', digest: undefined });
    assert.deepEqual(parseImageReference('foo/bar:1'), { transport: 'short-name', name: 'foo/bar', tag: '1', digest: undefined });
    assert.equal(formatReference(parseImageReference(`foo/bar@${D}`)), `foo/bar@${D}`);
    assert.equal(repositoryBaseName(parseImageReference('foo/bar:1')), 'bar');
  });

  it('keeps docker:// and explicit hosts fully qualified', () => {
    assert.equal(formatReference(parseImageReference('docker://busybox')), 'docker://docker.io/library/busybox:latest');
    assert.equal(formatReference(parseImageReference('localhost:5000/a/b:c')), 'docker://localhost:5000/a/b:c');
    assert.equal(formatReference(parseImageReference('registry.example.com/x')), 'docker://registry.example.com/x:latest');
  });

  it('parses oci-archive: and docker-archive: references', () => {
    assert.deepEqual(parseImageReference('oci-archive:/srv/img.tar:web'), { transport: 'oci-archive', file: '/srv/img.tar', ref: 'web' });
    assert.deepEqual(parseImageReference('docker-archive:/srv/d.tar'), { transport: 'docker-archive', file: '/srv/d.tar', tag: undefined, index: undefined });
    assert.deepEqual(parseImageReference('docker-archive:/srv/d.tar:busybox:1.36'), { transport: 'docker-archive', file: '/srv/d.tar', tag: 'docker.io/library/busybox:1.36', index: undefined });
    assert.deepEqual(parseImageReference('docker-archive:/srv/d.tar:@2'), { transport: 'docker-archive', file: '/srv/d.tar', tag: undefined, index: 2 });
    assert.equal(formatReference(parseImageReference('docker-archive:/srv/d.tar:@2')), 'docker-archive:/srv/d.tar:@2');
    assert.equal(repositoryBaseName(parseImageReference('docker-archive:/srv/d.tar:quay.io/x/etcd:3')), 'etcd');
    assert.equal(repositoryBaseName(parseImageReference('oci-archive:/srv/web.tar')), 'web');
    for (const bad of ['docker-archive:', 'docker-archive:/x.tar:@x', `docker-archive:/x.tar:a@${D}`, 'oci-archive::tag', 'dir:/x']) {
      assert.throws(() => parseImageReference(bad), { code: 'INVALID_REFERENCE' }, bad);
    }
  });
});

const CONF = `
unqualified-search-registries = ["registry.example.com", "docker.io"]

[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"
insecure = true

[[registry.mirror]]
location = "mirror-a.example:5000"

[[registry.mirror]]
location = "mirror-b.example/cache"
insecure = true

[[registry]]
prefix = "registry.example.com/special"
location = "special.example/ns"

[[registry]]
location = "evil.example"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true

[[registry]]
prefix = "digests.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "dmirror.example"

[aliases]
"etcd" = "quay.io/coreos/etcd"
`;

describe('registries.conf', () => {
  const conf = parseRegistriesConf(CONF, '/etc/containers/registries.conf');

  it('reads search registries, registries, mirrors and aliases', () => {
    assert.deepEqual(conf.unqualifiedSearchRegistries, ['registry.example.com', 'docker.io']);
    assert.equal(conf.registries.length, 5);
    const r = findRegistry(conf, parseDockerReference('registry.example.com/app:1'))!;
    assert.equal(r.insecure, true);
    assert.deepEqual(r.mirrors.map((m) => [m.location, m.insecure]), [['mirror-a.example:5000', false], ['mirror-b.example/cache', true]]);
    assert.equal(conf.aliases.get('etcd'), 'quay.io/coreos/etcd');
  });

  it('tries mirrors in order, then the primary, rewriting the prefix', () => {
    const s = pullSources(parseDockerReference('registry.example.com/team/app:1'), conf);
    assert.deepEqual(names(s), ['docker://mirror-a.example:5000/team/app:1', 'docker://mirror-b.example/cache/team/app:1', 'docker://registry.example.com/team/app:1']);
    assert.deepEqual(s.map((x) => [x.mirror, x.insecure]), [[true, false], [true, true], [false, true]]);
  });

  it('uses the longest matching prefix, on whole path components', () => {
    const s = pullSources(parseDockerReference(`registry.example.com/special/x@${D}`), conf);
    assert.deepEqual(names(s), [`docker://special.example/ns/x@${D}`]);
    assert.equal(s[0]!.insecure, false);
    // "registry.example.com/specialist" is not under "registry.example.com/special".
    assert.deepEqual(names(pullSources(parseDockerReference('registry.example.com/specialist'), conf)).at(-1), 'docker://registry.example.com/specialist:latest');
  });

  it('matches wildcard prefixes on the host only', () => {
    const s = pullSources(parseDockerReference('build.corp.example/a'), conf);
    assert.deepEqual(names(s), ['docker://build.corp.example/a:latest']);
    assert.equal(s[0]!.insecure, true);
    assert.equal(findRegistry(conf, parseDockerReference('corp.example/a')), undefined);
  });

  it('leaves unconfigured registries alone', () => {
    const s = pullSources(parseDockerReference('quay.io/x/y'), conf);
    assert.deepEqual(names(s), ['docker://quay.io/x/y:latest']);
    assert.equal(s[0]!.insecure, false);
  });

  it('refuses blocked registries with REGISTRY_BLOCKED', () => {
    assert.throws(() => pullSources(parseDockerReference('evil.example/x'), conf), (e: { code?: string; exitCode?: number; message?: string }) => {
      assert.equal(e.code, 'REGISTRY_BLOCKED');
      assert.equal(e.exitCode, 8);
      assert.match(e.message!, /blocked/);
      return true;
    });
  });

  it('uses digest-only mirrors only for digest references', () => {
    assert.deepEqual(names(pullSources(parseDockerReference('digests.example/a:1'), conf)), ['docker://digests.example/a:1']);
    assert.deepEqual(names(pullSources(parseDockerReference(`digests.example/a@${D}`), conf)), [`docker://dmirror.example/a@${D}`, `docker://digests.example/a@${D}`]);
  });

  it('turns short names into candidates per search registry, in order', () => {
    assert.deepEqual(shortNameCandidates(short('busybox'), conf).map(formatReference), ['docker://registry.example.com/busybox:latest', 'docker://docker.io/library/busybox:latest']);
    assert.deepEqual(shortNameCandidates(short(`a/b@${D}`), conf).map(formatReference), [`docker://registry.example.com/a/b@${D}`, `docker://docker.io/a/b@${D}`]);
  });

  it('resolves an alias to its one target, keeping the user\'s tag', () => {
    assert.deepEqual(shortNameCandidates(short('etcd'), conf).map(formatReference), ['docker://quay.io/coreos/etcd:latest']);
    assert.deepEqual(shortNameCandidates(short('etcd:v3.5'), conf).map(formatReference), ['docker://quay.io/coreos/etcd:v3.5']);
  });

  it('says so when no search registries are configured', () => {
    assert.throws(() => shortNameCandidates(short('busybox'), parseRegistriesConf('', '/x.conf')), (e: { code?: string; message?: string; hint?: string }) => {
      assert.equal(e.code, 'INVALID_REFERENCE');
      assert.match(e.message!, /no unqualified-search-registries/);
      assert.match(e.hint!, /docker:\/\/docker\.io\/busybox/);
      return true;
    });
  });

  it('converts version 1 tables', () => {
    const v1 = parseRegistriesConf('[registries.search]\nregistries = ["a.io", "b.io"]\n[registries.insecure]\nregistries = ["b.io"]\n[registries.block]\nregistries = ["c.io"]\n', 'v1.conf');
    assert.deepEqual(v1.unqualifiedSearchRegistries, ['a.io', 'b.io']);
    assert.equal(pullSources(parseDockerReference('b.io/x'), v1)[0]!.insecure, true);
    assert.throws(() => pullSources(parseDockerReference('c.io/x'), v1), { code: 'REGISTRY_BLOCKED' });
  });

  it('refuses malformed files with CONFIG_INVALID', () => {
    const bad = [
      'not = [toml',
      'unqualified-search-registries = "docker.io"',
      '[[registry]]\ninsecure = true',
      '[[registry]]\nlocation = "https://x.io"',
      '[[registry]]\nprefix = "*.x.io"\nlocation = "y.io"',
      '[[registry]]\nlocation = "x.io"\ninsecure = "yes"',
      '[[registry]]\nlocation = "x.io"\n[[registry.mirror]]\ninsecure = true',
      '[[registry]]\nlocation = "x.io"\n[[registry]]\nlocation = "x.io"',
      'unqualified-search-registries = ["a.io"]\n[registries.search]\nregistries = ["b.io"]',
    ];
    for (const text of bad) assert.throws(() => parseRegistriesConf(text, '/r.conf'), (e: { code?: string; message?: string }) => e.code === 'CONFIG_INVALID' && e.message!.includes('/r.conf'), text);
  });

  describe('loading', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-regconf-'));
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    it('reads the option path, else $BERTH_REGISTRIES_CONF; a named file must exist', async () => {
      const file = path.join(dir, 'r.conf');
      await writeFile(file, 'unqualified-search-registries = ["opt.example"]\n');
      assert.deepEqual((await loadRegistriesConf(file)).unqualifiedSearchRegistries, ['opt.example']);
      assert.deepEqual((await loadRegistriesConf(undefined, { BERTH_REGISTRIES_CONF: file })).unqualifiedSearchRegistries, ['opt.example']);
      await assert.rejects(loadRegistriesConf(path.join(dir, 'none.conf')), { code: 'CONFIG_INVALID' });
    });
  });
});
