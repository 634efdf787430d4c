/** The publisher's pure parts: notification envelopes, poll backoff, retention's choice, its configuration, its queue. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Digest } from '../../src/image/digest.ts';
import { chooseRetired } from '../../src/ops/share-decide.ts';
import { pollDelay } from '../../src/publish/backoff.ts';
import { parsePublisherConfig } from '../../src/publish/config.ts';
import { EVENTS_MEDIA_TYPE, NotificationError, parseNotification } from '../../src/publish/notifications.ts';
import { WorkQueue, type Work } from '../../src/publish/service.ts';

const D = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const push = (target: Record<string, unknown>) => ({ id: 'x', timestamp: '2026-01-01T00:00:00Z', action: 'push', target, request: { host: 'r' }, actor: {}, source: {} });
const manifest = 'application/vnd.docker.distribution.manifest.v2+json';

describe('notification envelopes', () => {
  it('keeps push events of manifests: repository, tag, digest', () => {
    const env = {
      events: [
        push({ mediaType: manifest, repository: 'ns/app', tag: 'v1', digest: D('a'), size: 1 }),
        push({ mediaType: 'application/octet-stream', repository: 'ns/app', digest: D('b') }),
        { ...push({ mediaType: manifest, repository: 'ns/app', tag: 'v1', digest: D('a') }), action: 'pull' },
        push({ mediaType: 'application/vnd.oci.image.index.v1+json', repository: 'other', digest: D('c') }),
        push({ mediaType: manifest, repository: 'ns/app', tag: 'v1', digest: D('a') }),
      ],
    };
    assert.deepEqual(parseNotification(EVENTS_MEDIA_TYPE, body(env)), [
      { repository: 'ns/app', tag: 'v1', digest: D('a') },
      { repository: 'other', digest: D('c') },
    ]);
    assert.deepEqual(parseNotification(`${EVENTS_MEDIA_TYPE}; charset=utf-8`, body({ events: [] })), []);
  });

  it('refuses other media types, bad JSON, duplicate members and malformed push events', () => {
    const status = (ct: string | undefined, b: Buffer) => {
      try {
        parseNotification(ct, b);
        return 0;
      } catch (e) {
        assert.ok(e instanceof NotificationError);
        return e.status;
      }
    };
    assert.equal(status('application/json', body({ events: [] })), 415);
    assert.equal(status(undefined, body({ events: [] })), 415);
    assert.equal(status(EVENTS_MEDIA_TYPE, Buffer.from('{"events":[')), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, Buffer.from('{"events":[],"events":[]}')), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, body({ nope: [] })), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, body({ events: ['x'] })), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, body({ events: [push({ mediaType: manifest, repository: '../etc', tag: 'v1' })] })), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, body({ events: [push({ mediaType: manifest, repository: 'app', tag: 'a/b' })] })), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, body({ events: [push({ mediaType: manifest, repository: 'app', digest: 'md5:00' })] })), 400);
    assert.equal(status(EVENTS_MEDIA_TYPE, Buffer.alloc(1024 * 1024 + 1, 32)), 413);
  });
});

describe('poll backoff', () => {
  it('polls every interval while it works, doubles after failures, up to the maximum', () => {
    assert.equal(pollDelay(60, 3600, 0), 60);
    assert.equal(pollDelay(60, 3600, 1), 120);
    assert.equal(pollDelay(60, 3600, 3), 480);
    assert.equal(pollDelay(60, 3600, 10), 3600);
    assert.equal(pollDelay(60, 3600, 10_000), 3600);
    assert.equal(pollDelay(600, 300, 2), 600, 'never below the interval');
  });
});

describe('retention choice', () => {
  const img = (c: string, repository: string, state: 'approved' | 'blocked' | 'pending' | 'undecided') => ({ digest: D(c), repository, state });
  it('keeps the N newest approved per repository and retires what is older', () => {
    const images = [img('5', 'r/a', 'approved'), img('4', 'r/b', 'approved'), img('3', 'r/a', 'approved'), img('2', 'r/a', 'approved'), img('1', 'r/b', 'approved')];
    assert.deepEqual(chooseRetired(images, 2, new Set()), [D('2')]);
    assert.deepEqual(chooseRetired(images, 1, new Set()), [D('3'), D('2'), D('1')]);
  });
  it('never retires what a ref names, nor undecided images; blocked ones only when older than the N-th approved', () => {
    const images = [img('6', 'r', 'blocked'), img('5', 'r', 'approved'), img('4', 'r', 'pending'), img('3', 'r', 'blocked'), img('2', 'r', 'approved'), img('1', 'r', 'undecided')];
    assert.deepEqual(chooseRetired(images, 1, new Set()), [D('3'), D('2')]);
    assert.deepEqual(chooseRetired(images, 1, new Set([D('2')])), [D('3')]);
    assert.deepEqual(chooseRetired(images, 5, new Set()), []);
  });
});

describe('publisher.conf', () => {
  it('reads every key, repeatable ones repeated', () => {
    const c = parsePublisherConfig(
      [
        '# the publisher',
        'share=/srv/share',
        'repository=docker://registry.example:5000/infra/etcd',
        'repository=registry.example:5000/web:1.0,1.1',
        'poll-interval=5m',
        'poll-max-backoff=2h',
        'listen=0.0.0.0:8600',
        'token-file=/etc/berth/publisher.token',
        'key=/etc/berth/publisher.key',
        'block-at=high',
        'allow=CVE-1',
        'allow=CVE-2',
        'osv-dir=/var/lib/osv',
        'keep=5',
        'grace=7d',
        'tls-verify=no',
        '',
      ].join('\n'),
      'publisher.conf',
    );
    assert.equal(c.share, '/srv/share');
    assert.deepEqual(c.repositories, [{ name: 'registry.example:5000/infra/etcd' }, { name: 'registry.example:5000/web', tags: ['1.0', '1.1'] }]);
    assert.equal(c.pollInterval, 300);
    assert.equal(c.pollMaxBackoff, 7200);
    assert.equal(c.listen, '0.0.0.0:8600');
    assert.deepEqual(c.scan, { allow: ['CVE-1', 'CVE-2'], hooks: [], blockAt: 'high', osvDir: '/var/lib/osv' });
    assert.equal(c.keep, 5);
    assert.equal(c.grace, 7 * 86400);
    assert.equal(c.tlsVerify, false);
  });
  it('names the file, the line and the fix for a bad line', () => {
    const bad = (text: string, re: RegExp) => assert.throws(() => parsePublisherConfig(text, 'p.conf'), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && re.test(e.message));
    bad('nonsense', /^p\.conf:1: not KEY=VALUE/);
    bad('\nfrobnicate=1', /^p\.conf:2: unknown key "frobnicate"/);
    bad('share=/a\nshare=/b', /share is set twice/);
    bad('keep=0', /keep=0: not a number from 1/);
    bad('poll-interval=soon', /not a duration/);
    bad('block-at=dire', /not one of unknown, low, medium, high, critical/);
    bad('repository=etcd', /not HOST\[:PORT\]\/REPO/);
    bad('listen=8600', /not HOST:PORT/);
    bad('key=', /key has no value/);
  });
});

describe('work queue', () => {
  it('runs one item at a time, in order, and does not queue an item twice', async () => {
    const ran: string[] = [];
    let running = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(async (w: Work) => {
      running++;
      assert.equal(running, 1, 'one at a time');
      ran.push(w.kind === 'tag' ? w.tag : w.repo.name);
      if (ran.length === 1) await gate;
      running--;
      return w.kind === 'tag' && w.tag !== 'bad';
    });
    const repo = { name: 'r/a' };
    const first = q.push({ kind: 'tag', repo, tag: 'one' });
    const a = q.push({ kind: 'tag', repo, tag: 'two' });
    const b = q.push({ kind: 'tag', repo, tag: 'two' });
    const c = q.push({ kind: 'tag', repo, tag: 'bad' });
    assert.equal(a, b, 'the same waiting item is shared');
    release();
    assert.deepEqual(await Promise.all([first, a, b, c]), [true, true, true, false]);
    await q.idle();
    assert.deepEqual(ran, ['one', 'two', 'bad']);
  });
});
