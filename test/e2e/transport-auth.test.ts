/**
 * Registry authentication, end to end: Basic (docker-registry with an
 * htpasswd file) with credentials from --creds or an auth file, and the
 * Bearer token flow (TokenServer in front of docker-registry) including
 * token expiry, both noticed ahead of time and met as a 401.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parseImageReference } from '../../src/transport/index.ts';
import { openImageSource } from '../../src/transport/index.ts';
import type { SourceOptions } from '../../src/transport/types.ts';
import { pullThrough } from '../fixtures/pull-through.ts';
import { buildImage } from '../fixtures/oci-image.ts';
import { skopeoCopy, TestRegistry } from '../harness/registry.ts';
import { TokenServer } from '../harness/token-server.ts';

const USER = 'berth';
const PASSWORD = 's3cret:with-colon';

async function pull(ref: string, options: SourceOptions) {
  const source = await openImageSource(parseImageReference(ref), options);
  try {
    return await pullThrough(source);
  } finally {
    await source.close();
  }
}

describe('registry authentication', () => {
  let dir: string;
  let layout: string;
  let conf: string;
  let noAuthFile: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-auth-e2e-'));
    layout = path.join(dir, 'layout');
    conf = path.join(dir, 'registries.conf');
    await writeFile(conf, '');
    // Hermetic: an empty auth file instead of the host's own.
    noAuthFile = path.join(dir, 'none.json');
    await writeFile(noAuthFile, '{"auths": {}}');
    await buildImage(layout, 'app', { busybox: false, layers: [[{ path: 'srv/data', content: 'data\n'.repeat(5000) }]] });
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('Basic (htpasswd)', () => {
    let reg: TestRegistry;
    let ref: string;

    before(async () => {
      reg = await TestRegistry.start({ auth: { user: USER, password: PASSWORD } });
      ref = `docker://${reg.host}/private/app:1`;
      await skopeoCopy(`oci:${layout}:app`, ref, ['--dest-tls-verify=false', '--dest-creds', reg.creds!]);
    });
    after(async () => reg?.stop());

    it('pulls with --creds', async () => {
      await pull(ref, { tlsVerify: false, registriesConf: conf, creds: `${USER}:${PASSWORD}` });
    });

    it('pulls with credentials from an auth file', async () => {
      const file = path.join(dir, 'basic-auth.json');
      await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
      await pull(ref, { tlsVerify: false, registriesConf: conf, authFile: file });
      // The same file found through $REGISTRY_AUTH_FILE.
      const saved = process.env['REGISTRY_AUTH_FILE'];
      process.env['REGISTRY_AUTH_FILE'] = file;
      try {
        await pull(ref, { tlsVerify: false, registriesConf: conf });
      } finally {
        if (saved === undefined) delete process.env['REGISTRY_AUTH_FILE'];
        else process.env['REGISTRY_AUTH_FILE'] = saved;
      }
    });

    it('says credentials are needed, or wrong', async () => {
      await assert.rejects(pull(ref, { tlsVerify: false, registriesConf: conf, authFile: noAuthFile }), (e: { code?: string; message?: string; hint?: string }) => {
        assert.equal(e.code, 'IMAGE_NOT_FOUND');
        assert.match(e.message!, /access denied .*401/);
        assert.match(e.hint!, /credentials/);
        return true;
      });
      await assert.rejects(pull(ref, { tlsVerify: false, registriesConf: conf, creds: `${USER}:wrong` }), (e: { code?: string; message?: string; hint?: string }) => {
        assert.equal(e.code, 'IMAGE_NOT_FOUND');
        assert.match(e.message!, new RegExp(`access denied by ${reg.host} to ${USER}`));
        assert.match(e.hint!, /credentials are wrong/);
        return true;
      });
    });
  });

  describe('Bearer (token service)', () => {
    let reg: TestRegistry;

    before(async () => {
      reg = await TestRegistry.start();
      await skopeoCopy(`oci:${layout}:app`, `docker://${reg.host}/team/app:1`, ['--dest-tls-verify=false']);
    });
    after(async () => reg?.stop());

    async function withTokens<T>(options: { tokenTtlMs?: number; advertisedExpiresIn?: number }, fn: (ts: TokenServer) => Promise<T>): Promise<T> {
      const ts = await TokenServer.start({ upstream: reg.host, user: USER, password: PASSWORD, ...options });
      try {
        return await fn(ts);
      } finally {
        await ts.stop();
      }
    }

    it('gets a token for the repository\'s pull scope with the credentials', async () => {
      await withTokens({ tokenTtlMs: 30_000 }, async (ts) => {
        await pull(`docker://${ts.host}/team/app:1`, { tlsVerify: false, registriesConf: conf, creds: `${USER}:${PASSWORD}` });
        assert.equal(ts.tokenRequests.length, 1, 'one token serves the whole pull');
        assert.deepEqual(ts.tokenRequests[0], { scopes: ['repository:team/app:pull'], service: ts.service, user: USER, status: 200 });
        // Only the ping went without a token.
        assert.deepEqual(ts.refused.map((r) => [r.path, r.why]), [['/v2/', 'no token']]);
      });
    });

    it('reports refused credentials clearly', async () => {
      await withTokens({}, async (ts) => {
        await assert.rejects(pull(`docker://${ts.host}/team/app:1`, { tlsVerify: false, registriesConf: conf, authFile: noAuthFile }), (e: { code?: string; message?: string }) => {
          assert.equal(e.code, 'IMAGE_NOT_FOUND');
          assert.match(e.message!, /refused anonymous access/);
          return true;
        });
        await assert.rejects(pull(`docker://${ts.host}/team/app:1`, { tlsVerify: false, registriesConf: conf, creds: `${USER}:nope` }), /refused the credentials of berth/);
      });
    });

    it('renews a token that is about to expire before using it', async () => {
      await withTokens({ tokenTtlMs: 1000 }, async (ts) => {
        const source = await openImageSource(parseImageReference(`docker://${ts.host}/team/app:1`), { tlsVerify: false, registriesConf: conf, creds: `${USER}:${PASSWORD}` });
        try {
          await source.getManifest();
          await sleep(1100);
          await pullThrough(source);
        } finally {
          await source.close();
        }
        assert.equal(ts.tokenRequests.length, 2);
        assert.ok(!ts.refused.some((r) => r.why === 'expired'), JSON.stringify(ts.refused));
      });
    });

    it('renews a token the registry rejects as expired (401), once', async () => {
      // The server says 60 s but honours 600 ms: the client meets a 401 and must ask again.
      await withTokens({ tokenTtlMs: 600, advertisedExpiresIn: 60 }, async (ts) => {
        const source = await openImageSource(parseImageReference(`docker://${ts.host}/team/app:1`), { tlsVerify: false, registriesConf: conf, creds: `${USER}:${PASSWORD}` });
        try {
          await source.getManifest();
          await sleep(700);
          await pullThrough(source);
        } finally {
          await source.close();
        }
        assert.equal(ts.tokenRequests.length, 2);
        assert.equal(ts.refused.filter((r) => r.why === 'expired').length, 1);
      });
    });
  });
});
