import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReference, parseImageReference } from '../../src/transport/index.ts';
import { defaultName } from '../../src/ops/install.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  const cases: [string, string][] = [
    ['docker://127.0.0.1:5000/demo/web:1.0', 'docker://127.0.0.1:5000/demo/web:1.0'],
    ['docker://localhost/etcd', 'docker://localhost/etcd:latest'],
    ['docker://busybox', 'docker://docker.io/library/busybox:latest'],
    ['docker://quay.io/coreos/etcd@' + D, 'docker://quay.io/coreos/etcd@' + D],
    ['docker://quay.io/coreos/etcd:v3@' + D, 'docker://quay.io/coreos/etcd:v3@' + D],
    ['registry.example.com/a/b:c', 'docker://registry.example.com/a/b:c'],
    ['oci:/srv/images:etcd', 'oci:/srv/images:etcd'],
    ['oci:/srv/images', 'oci:/srv/images'],
  ];
  for (const [input, canonical] of cases) {
    it(`parses ${input}`, () => assert.equal(formatReference(parseImageReference(input)), canonical));
  }

  const bad = ['', 'dir:/tmp/x', 'docker://UPPER/case', 'docker://host:5000/repo:bad tag', 'docker://r/x@sha256:abc', 'docker://a/b\nc', 'oci:', 'docker://host/-bad'];
  for (const input of bad) {
    it(`refuses ${JSON.stringify(input)} with INVALID_REFERENCE`, () => {
      assert.throws(() => parseImageReference(input), (e: { code?: string; hint?: string }) => e.code === 'INVALID_REFERENCE' && typeof e.hint === 'string');
    });
  }

  it('derives atomic-style default names', () => {
    assert.equal(defaultName(parseImageReference('docker://r.example/x/etcd:latest')), 'etcd');
    assert.equal(defaultName(parseImageReference('docker://r.example/x/etcd:3.4')), 'etcd-3.4');
    assert.equal(defaultName(parseImageReference('oci:/srv/layout:web')), 'web');
  });
});

describe('default names from local media', () => {
  it('names a layout or archive image by its repository, not its registry host', () => {
    assert.equal(defaultName(parseImageReference('oci-archive:/media/bundle.tar:127.0.0.1:5000/x/app:1')), 'app');
    assert.equal(defaultName(parseImageReference('oci:/srv/layout:registry.example.com/system/etcd:3.4')), 'etcd');
    assert.equal(defaultName(parseImageReference('oci:/srv/layout:web')), 'web');
  });
});
