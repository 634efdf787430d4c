import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CredentialStore, defaultAuthFiles, findCredentials, lookupKeys, normalizeAuthKey, parseAuthFile, parseCreds,
} from '../../src/transport/docker/auth_file.ts';
import { parseRetryAfter, retryDelay, retryPolicy } from '../../src/transport/docker/retry.ts';
import { parseWWWAuthenticate, pickChallenge } from '../../src/transport/docker/www_authenticate.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('WWW-Authenticate parsing', () => {
  it('reads a Docker Hub style Bearer challenge', () => {
    const c = parseWWWAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
    assert.deepEqual(c, [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }]);
  });

  it('reads Basic with a realm, unquoted values, odd spacing and case', () => {
    assert.deepEqual(parseWWWAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    assert.deepEqual(parseWWWAuthenticate('BEARER  Realm = "http://x/t" ,  Service=reg'), [{ scheme: 'bearer', params: { realm: 'http://x/t', service: 'reg' } }]);
  });

  it('keeps commas inside quoted values and unescapes backslashes', () => {
    const c = parseWWWAuthenticate('Bearer realm="http://x/t",scope="repository:a:pull,push",error="a \\"quoted\\" word"');
    assert.equal(c[0]!.params['scope'], 'repository:a:pull,push');
    assert.equal(c[0]!.params['error'], 'a "quoted" word');
  });

  it('splits several challenges in one header and across headers', () => {
    const c = parseWWWAuthenticate('Basic realm="r1", Bearer realm="http://t/token",service="s"');
    assert.deepEqual(c.map((x) => x.scheme), ['basic', 'bearer']);
    assert.equal(c[1]!.params['service'], 's');
    assert.equal(pickChallenge(c)!.scheme, 'bearer');
    const multi = parseWWWAuthenticate(['Negotiate', 'Basic realm="x"']);
    assert.deepEqual(multi.map((x) => x.scheme), ['negotiate', 'basic']);
    assert.equal(pickChallenge(multi)!.scheme, 'basic');
  });

  it('reads a token68 challenge', () => {
    assert.deepEqual(parseWWWAuthenticate('Negotiate abc123=='), [{ scheme: 'negotiate', params: { token68: 'abc123==' } }]);
  });

  it('never throws on garbage and ignores Bearer without realm', () => {
    for (const h of ['', ',,,', '"', 'Bearer realm="unterminated', '=x', 'Bearer =', '\u0000\u0001']) parseWWWAuthenticate(h);
    assert.equal(pickChallenge(parseWWWAuthenticate('Bearer service="x"')), undefined);
    assert.deepEqual(parseWWWAuthenticate(undefined), []);
  });
});

describe('auth files', () => {
  it('parses auths.HOST.auth as base64 USER:PASS (passwords may hold colons)', () => {
    const entries = parseAuthFile(JSON.stringify({ auths: { 'reg.example:5000': { auth: b64('alice:pa:ss') } } }), 'auth.json');
    assert.deepEqual(entries.get('reg.example:5000'), { username: 'alice', password: 'pa:ss' });
  });

  it('normalises legacy and Docker Hub keys', () => {
    assert.equal(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeAuthKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeAuthKey('http://reg.example:5000/v2/'), 'reg.example:5000');
    assert.equal(normalizeAuthKey('quay.io/org/repo'), 'quay.io/org/repo');
    const entries = parseAuthFile(JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } }), 'config.json');
    assert.deepEqual(findCredentials([entries], 'docker.io', 'library/busybox'), { username: 'hub', password: 'pw' });
  });

  it('prefers the most specific key, and the first file that has one', () => {
    assert.deepEqual(lookupKeys('quay.io', 'org/team/app'), ['quay.io/org/team/app', 'quay.io/org/team', 'quay.io/org', 'quay.io']);
    const a = parseAuthFile(JSON.stringify({ auths: { 'quay.io': { auth: b64('host:1') }, 'quay.io/org': { auth: b64('org:2') } } }), 'a');
    const b = parseAuthFile(JSON.stringify({ auths: { 'quay.io/org/app': { auth: b64('file-b:3') } } }), 'b');
    assert.equal(findCredentials([a, b], 'quay.io', 'org/app')!.username, 'org');
    assert.equal(findCredentials([a, b], 'quay.io', 'other/app')!.username, 'host');
    assert.equal(findCredentials([b, a], 'quay.io', 'org/app')!.username, 'file-b');
    assert.equal(findCredentials([a, b], 'docker.io', 'library/x'), undefined);
  });

  it('skips entries without inline auth (helpers, identity tokens)', () => {
    const e = parseAuthFile(JSON.stringify({ auths: { 'a.io': {}, 'b.io': { identitytoken: 'x' } }, credHelpers: { 'c.io': 'gcr' } }), 'f');
    assert.equal(e.size, 0);
    assert.equal(parseAuthFile('{}', 'f').size, 0);
  });

  it('refuses malformed files with CONFIG_INVALID naming the file', () => {
    for (const text of ['not json', '[]', '{"auths": []}', '{"auths": {"a.io": {"auth": "!!!"}}}', `{"auths": {"a.io": {"auth": "${b64('nocolon')}"}}}`, '{"auths": {"a.io": 3}}']) {
      assert.throws(() => parseAuthFile(text, '/x/auth.json'), (e: { code?: string; message?: string }) => e.code === 'CONFIG_INVALID' && e.message!.includes('/x/auth.json'), text);
    }
  });

  it('parses --creds USER:PASS', () => {
    assert.deepEqual(parseCreds('u:p:q'), { username: 'u', password: 'p:q' });
    assert.deepEqual(parseCreds('u:'), { username: 'u', password: '' });
    assert.throws(() => parseCreds('nopass'), { code: 'USAGE' });
    assert.throws(() => parseCreds(':p'), { code: 'USAGE' });
  });

  it('looks in $REGISTRY_AUTH_FILE, /run/containers/UID, ~/.config/containers and ~/.docker, in that order', () => {
    assert.deepEqual(defaultAuthFiles({ REGISTRY_AUTH_FILE: '/etc/berth/auth.json' }, 0, '/root'), [
      '/etc/berth/auth.json', '/run/containers/0/auth.json', '/root/.config/containers/auth.json', '/root/.docker/config.json',
    ]);
    assert.deepEqual(defaultAuthFiles({}, 1000, '/home/u').slice(0, 1), ['/run/containers/1000/auth.json']);
  });

  describe('CredentialStore', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-auth-'));
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    it('explicit creds win over the file; the file is read when given', async () => {
      const file = path.join(dir, 'auth.json');
      await writeFile(file, JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('fromfile:pw') } } }));
      assert.deepEqual(await new CredentialStore({ authFile: file }).lookup('127.0.0.1:5000', 'a/b'), { username: 'fromfile', password: 'pw' });
      assert.equal(await new CredentialStore({ authFile: file }).lookup('127.0.0.1:5001', 'a/b'), undefined);
      assert.deepEqual(await new CredentialStore({ authFile: file, creds: 'cli:x' }).lookup('127.0.0.1:5000', 'a/b'), { username: 'cli', password: 'x' });
      await assert.rejects(new CredentialStore({ authFile: path.join(dir, 'missing.json') }).lookup('h', 'r'), { code: 'CONFIG_INVALID' });
    });

    it('finds $REGISTRY_AUTH_FILE among the default files', async () => {
      const file = path.join(dir, 'env-auth.json');
      await writeFile(file, JSON.stringify({ auths: { 'env.example': { auth: b64('env:pw') } } }));
      const saved = process.env['REGISTRY_AUTH_FILE'];
      process.env['REGISTRY_AUTH_FILE'] = file;
      try {
        assert.equal((await new CredentialStore().lookup('env.example', 'x'))?.username, 'env');
      } finally {
        if (saved === undefined) delete process.env['REGISTRY_AUTH_FILE'];
        else process.env['REGISTRY_AUTH_FILE'] = saved;
      }
    });
  });
});

describe('retry policy', () => {
  it('parses Retry-After seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('0'), 0);
    assert.equal(parseRetryAfter('3'), 3000);
    const now = Date.parse('2024-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  it('backs off exponentially, honours Retry-After, and is bounded', () => {
    const p = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
    assert.equal(p.attempts, 4);
    const d1 = retryDelay(p, 1, undefined);
    const d3 = retryDelay(p, 3, undefined);
    assert.ok(d1 >= 100 && d1 <= 110, String(d1));
    assert.ok(d3 >= 400 && d3 <= 440, String(d3));
    assert.equal(retryDelay(p, 10, undefined), 1000);
    assert.equal(retryDelay(p, 1, '0'), 0);
    assert.equal(retryDelay(p, 1, '3600'), 1000);
    assert.equal(retryPolicy({ attempts: 0 }).attempts, 1);
  });
});
