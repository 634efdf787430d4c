/**
 * Signature verification time: one simple-signing signature verified
 * (OpenPGP + strict payload parse + manifest digest + identity match), per
 * key type, and a whole checkTrust() (policy.json, registries.d, key file,
 * file:// look-aside store, one signature).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { digestOf, encodedOf } from '../src/image/digest.ts';
import { parseImageReference } from '../src/transport/index.ts';
import { checkTrust } from '../src/trust/index.ts';
import { buildPayload } from '../src/trust/payload.ts';
import { signPayload } from '../src/trust/sign.ts';
import { verifyImageSignature } from '../src/trust/verify.ts';

export interface SignatureTiming {
  key: string;
  rounds: number;
  /** Milliseconds per verifyImageSignature(). */
  verifyMs: number;
  /** Milliseconds per checkTrust() with one signature. */
  checkTrustMs: number;
}

async function perCall(rounds: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up: JIT, lazy crypto initialisation
  const t = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) await fn();
  return Number(process.hrtime.bigint() - t) / 1e6 / rounds;
}

export async function signatureTimings(work: string, rounds = 200): Promise<SignatureTiming[]> {
  const ref = parseImageReference('docker://127.0.0.1:5000/bench/app:1');
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: Array.from({ length: 20 }, (_, i) => ({ digest: digestOf(String(i)), size: i })) }));
  const payload = buildPayload({ manifestDigest: digestOf(manifest), dockerReference: '127.0.0.1:5000/bench/app:1', creator: 'bench', timestamp: 1700000000 });
  const out: SignatureTiming[] = [];
  for (const [key, options] of [
    ['ed25519', { type: 'ecc', curve: 'ed25519Legacy' }],
    ['rsa2048', { type: 'rsa', rsaBits: 2048 }],
  ] as const) {
    const { privateKey, publicKey } = await openpgp.generateKey({ ...options, userIDs: [{ name: key, email: `${key}@example.com` }], format: 'object' });
    const signature = await signPayload(payload, privateKey);
    const verify = () => verifyImageSignature(signature, [publicKey], ref, manifest, { type: 'matchRepoDigestOrExact' });
    // Time the accepting path only: a verification that failed early would look fast.
    const accepted = await verify();
    if (accepted.fingerprint !== publicKey.getFingerprint().toUpperCase()) throw new Error(`${key}: the signature was not accepted by its own key`);
    const verifyMs = await perCall(rounds, verify);

    const dir = path.join(work, `trust-${key}`);
    const sigDir = path.join(dir, `store/bench/app@sha256=${encodedOf(digestOf(manifest))}`);
    await mkdir(sigDir, { recursive: true });
    await mkdir(path.join(dir, 'registries.d'));
    await writeFile(path.join(sigDir, 'signature-1'), signature);
    await writeFile(path.join(dir, 'key.gpg'), publicKey.write() as Uint8Array);
    await writeFile(path.join(dir, 'registries.d/b.yaml'), `default-docker:\n  lookaside: file://${dir}/store\n`);
    await writeFile(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(dir, 'key.gpg') }] }));
    const opts = { policyPath: path.join(dir, 'policy.json'), registriesDir: path.join(dir, 'registries.d') };
    const checkTrustMs = await perCall(rounds, () => checkTrust(ref, manifest, opts));
    out.push({ key, rounds, verifyMs, checkTrustMs });
  }
  return out;
}
