// Benchmark note, not a timing assertion: how long verifying one image signature takes
// (OpenPGP verification + strict payload parse + digest + identity match), per key type,
// and a whole checkTrust() with policy, registries.d and a file:// store. Target: < 5 ms.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import * as openpgp from 'openpgp';
import { digestOf, encodedOf } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/image/reference.ts';
import { checkTrust } from '../../src/trust/index.ts';
import { buildPayload } from '../../src/trust/payload.ts';
import { signPayload } from '../../src/trust/sign.ts';
import { verifyImageSignature } from '../../src/trust/verify.ts';

const ROUNDS = 200;
const ref = parseImageReference('docker://127.0.0.1:5000/bench/app:1');
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: Array.from({ length: 20 }, (_, i) => ({ digest: digestOf(String(i)), size: i })) }));

async function timePerCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(); // warm up (JIT, lazy crypto init)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / ROUNDS;
}

it('benchmark: signature verification time (printed, not asserted)', { timeout: 120_000 }, async (t) => {
  const payload = buildPayload({ manifestDigest: digestOf(manifest), dockerReference: '127.0.0.1:5000/bench/app:1', creator: 'bench', timestamp: 1700000000 });
  const lines: string[] = [];
  const work = await mkdtemp(path.join(tmpdir(), 'berth-bench-'));
  try {
    for (const [label, options] of [
      ['ed25519', { type: 'ecc', curve: 'ed25519Legacy' }],
      ['rsa2048', { type: 'rsa', rsaBits: 2048 }],
    ] as const) {
      const { privateKey, publicKey } = await openpgp.generateKey({ ...options, userIDs: [{ name: label, email: `${label}@example.com` }], format: 'object' });
      const signature = await signPayload(payload, privateKey);
      const verify = () => verifyImageSignature(signature, [publicKey], ref, manifest, { type: 'matchRepoDigestOrExact' });
      assert.equal((await verify()).fingerprint, publicKey.getFingerprint().toUpperCase());
      const perSignature = await timePerCall(verify);

      const dir = path.join(work, label);
      const sigDir = path.join(dir, `store/bench/app@sha256=${encodedOf(digestOf(manifest))}`);
      await mkdir(sigDir, { recursive: true });
      await mkdir(path.join(dir, 'registries.d'));
      await writeFile(path.join(sigDir, 'signature-1'), signature);
      await writeFile(path.join(dir, 'key.gpg'), publicKey.write() as Uint8Array);
      await writeFile(path.join(dir, 'registries.d/b.yaml'), `default-docker:\n  lookaside: file://${dir}/store\n`);
      await writeFile(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(dir, 'key.gpg') }] }));
      const opts = { policyPath: path.join(dir, 'policy.json'), registriesDir: path.join(dir, 'registries.d') };
      const whole = await timePerCall(() => checkTrust(ref, manifest, opts));
      lines.push(`${label}: ${perSignature.toFixed(2)} ms per signature verification; ${whole.toFixed(2)} ms per checkTrust (policy, registries.d, key file, file:// store, 1 signature)`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  for (const l of lines) t.diagnostic(`trust benchmark (${ROUNDS} rounds): ${l}`);
});
