/**
 * cosign's encrypted private key format: berth's keys open with an
 * independent implementation (PyNaCl + hashlib.scrypt, test/fixtures/cosign-key.py),
 * keys made there open and sign in berth, and hostile key files fail with one
 * error each, without allocating what they ask for.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BerthError } from '../../src/errors.ts';
import { parseDigest } from '../../src/image/digest.ts';
import {
  decryptPrivateKey, encryptPrivateKey, generateCosignKeyPair, parseEncryptedPrivateKey, pem, SIGSTORE_PRIVATE_KEY_PEM,
} from '../../src/trust/sigstore/private-key.ts';
import { buildCosignPayload } from '../../src/trust/sigstore/payload.ts';
import { isOwnSignature, signCosignPayload } from '../../src/trust/sigstore/signing.ts';

const PY = fileURLToPath(new URL('../fixtures/cosign-key.py', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'berth-cosign-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DIGEST = parseDigest(`sha256:${'ab'.repeat(32)}`, 'test');

const code = (e: unknown) => (e instanceof BerthError ? e.code : String(e));
const envelopeKey = (json: unknown, label = SIGSTORE_PRIVATE_KEY_PEM) => Buffer.from(pem(label, Buffer.from(JSON.stringify(json))));
const goodEnvelope = () => ({
  kdf: { name: 'scrypt', params: { N: 32768, r: 8, p: 1 }, salt: Buffer.alloc(32, 1).toString('base64') },
  cipher: { name: 'nacl/secretbox', nonce: Buffer.alloc(24, 2).toString('base64') },
  ciphertext: Buffer.alloc(80, 3).toString('base64'),
});

describe('cosign private keys', () => {
  it('a key berth generates decrypts with PyNaCl + hashlib.scrypt, to the same key', async () => {
    const { privatePem, publicPem } = await generateCosignKeyPair('s3cret pass');
    assert.match(privatePem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    const env = parseEncryptedPrivateKey(Buffer.from(privatePem), 'k');
    assert.deepEqual(env.scrypt, { N: 32768, r: 8, p: 1 });
    assert.equal(env.salt.length, 32);
    const file = path.join(dir, 'berth.key');
    writeFileSync(file, privatePem);
    const der = execFileSync('/usr/bin/python3', [PY, 'decrypt', file, 's3cret pass']);
    const fromPython = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    assert.equal(fromPython.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(createPublicKey(fromPython).export({ type: 'spki', format: 'pem' }), publicPem);
    // and the wrong password fails there too
    assert.equal(spawnSync('/usr/bin/python3', [PY, 'decrypt', file, 'other']).status, 3);
  });

  it('a key encrypted outside berth decrypts in berth and signs what openssl verifies', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const der = path.join(dir, 'outside.der');
    writeFileSync(der, privateKey.export({ type: 'pkcs8', format: 'der' }));
    const keyFile = execFileSync('/usr/bin/python3', [PY, 'encrypt', der, 'pw']);
    const key = await decryptPrivateKey(keyFile, 'pw', 'outside.key');
    const payload = buildCosignPayload('registry.example/app:1', DIGEST);
    const sig = signCosignPayload(key, payload, 'outside.key');
    assert.ok(isOwnSignature(key, payload, sig));
    writeFileSync(path.join(dir, 'payload'), payload);
    writeFileSync(path.join(dir, 'sig'), Buffer.from(sig, 'base64'));
    writeFileSync(path.join(dir, 'pub.pem'), createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));
    const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'sig'), path.join(dir, 'payload')]).toString();
    assert.match(out, /Verified OK/);
    await assert.rejects(decryptPrivateKey(keyFile, 'wrong', 'outside.key'), (e) => code(e) === 'KEY_PASSWORD' && /wrong password for outside\.key/.test((e as Error).message));
  });

  it('round trip of the older COSIGN label, an empty password, RSA and Ed25519 keys', async () => {
    for (const [type, opts] of [['rsa', { modulusLength: 2048 }], ['ed25519', {}]] as const) {
      const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
      const text = (await encryptPrivateKey(privateKey, '')).replaceAll('SIGSTORE', 'COSIGN');
      const back = await decryptPrivateKey(Buffer.from(text), '', type);
      const payload = buildCosignPayload('r.example/a:1', DIGEST);
      const sig = Buffer.from(signCosignPayload(back, payload, type), 'base64');
      assert.ok(verify(type === 'ed25519' ? null : 'sha256', payload, publicKey, sig), type);
    }
  });

  it('the payload is cosign\'s simple signing, byte for byte', () => {
    assert.equal(
      buildCosignPayload('registry.example/app:1', DIGEST).toString(),
      `{"critical":{"identity":{"docker-reference":"registry.example/app:1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });

  it('refuses hostile and malformed key files with KEY_INVALID, before any scrypt', async () => {
    const cases: [string, Buffer][] = [
      ['not PEM', Buffer.from('hello')],
      ['another PEM label', envelopeKey(goodEnvelope(), 'PRIVATE KEY')],
      ['two blocks', Buffer.concat([envelopeKey(goodEnvelope()), envelopeKey(goodEnvelope())])],
      ['huge N', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, params: { N: 2 ** 30, r: 8, p: 1 } } })],
      ['huge r', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, params: { N: 32768, r: 1024, p: 1 } } })],
      ['much work', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, params: { N: 262144, r: 8, p: 1000 } } })],
      ['N not a power of two', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, params: { N: 30000, r: 8, p: 1 } } })],
      ['N a float', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, params: { N: 32768.5, r: 8, p: 1 } } })],
      ['another kdf', envelopeKey({ ...goodEnvelope(), kdf: { ...goodEnvelope().kdf, name: 'pbkdf2' } })],
      ['another cipher', envelopeKey({ ...goodEnvelope(), cipher: { name: 'aes', nonce: Buffer.alloc(24).toString('base64') } })],
      ['short nonce', envelopeKey({ ...goodEnvelope(), cipher: { name: 'nacl/secretbox', nonce: Buffer.alloc(12).toString('base64') } })],
      ['unknown member', envelopeKey({ ...goodEnvelope(), extra: 1 })],
      ['missing ciphertext', envelopeKey({ kdf: goodEnvelope().kdf, cipher: goodEnvelope().cipher })],
      ['not base64', envelopeKey({ ...goodEnvelope(), ciphertext: 'a b c d' })],
      ['duplicate member', Buffer.from(pem(SIGSTORE_PRIVATE_KEY_PEM, Buffer.from(JSON.stringify(goodEnvelope()).replace('{"kdf"', '{"ciphertext":"AAAA","kdf"'))))],
      ['too large', Buffer.alloc(100_000, 0x41)],
    ];
    for (const [name, bytes] of cases) {
      await assert.rejects(decryptPrivateKey(bytes, 'pw', 'k'), (e) => code(e) === 'KEY_INVALID' && !(e as Error).message.includes('\n'), name);
    }
  });

  it('a well-formed envelope with the wrong key material is a wrong password, not a crash', async () => {
    await assert.rejects(decryptPrivateKey(envelopeKey(goodEnvelope()), 'pw', 'k'), (e) => code(e) === 'KEY_PASSWORD');
  });

  it('a decrypted key of an unsupported kind is refused', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const text = await encryptPrivateKey(privateKey, 'x', { N: 1024, r: 8, p: 1 });
    await assert.rejects(decryptPrivateKey(Buffer.from(text), 'x', 'k1'), (e) => code(e) === 'KEY_INVALID');
  });
});
