/**
 * The plumbing that carries sigstore signatures (not their verification,
 * see trust-sigstore.test.ts): registries.d's use-sigstore-attachments, the
 * store's image record, and the registry source's gate.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerReference } from '../../src/image/reference.ts';
import type { UntrustedSigstoreSignature } from '../../src/image/sigstore.ts';
import { decodeSigstoreSignature, encodeSigstoreSignature } from '../../src/store/images.ts';
import { Store } from '../../src/store/store.ts';
import type { ImageSource } from '../../src/transport/types.ts';
import { loadRegistriesConfig, useSigstoreAttachments } from '../../src/trust/registries-d.ts';
import { registrySigstoreSource } from '../../src/trust/sigstore-source.ts';
import { cleanup, imageOf, sandbox, streamOf, tarOf } from './store-helpers.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await cleanup();
});

async function registriesD(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-regd-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const ref = (s: string) => parseDockerReference(s, s);

const cosign: UntrustedSigstoreSignature = { kind: 'cosign', payload: Buffer.from('{"critical":{}}'), signature: 'c2ln', certificate: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', rekorBundle: '{"SignedEntryTimestamp":"x"}' };
const bundle: UntrustedSigstoreSignature = { kind: 'bundle', mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', bytes: Buffer.from('{"mediaType":"x"}') };

describe('registries.d use-sigstore-attachments', () => {
  it('is off unless a scope or default-docker says so; the most specific scope that sets it wins', async () => {
    const dir = await registriesD({
      'a.yaml': 'default-docker:\n  use-sigstore-attachments: true\ndocker:\n  registry.test/ns:\n    use-sigstore-attachments: false\n  registry.test/ns/app:\n    lookaside: file:///x\n',
    });
    const config = await loadRegistriesConfig(dir);
    assert.equal(useSigstoreAttachments(config, ref('other.test/x:1')), true);
    assert.equal(useSigstoreAttachments(config, ref('registry.test/ns/other:1')), false);
    // a scope that does not set it does not decide: the less specific one that does
    assert.equal(useSigstoreAttachments(config, ref('registry.test/ns/app:1')), false);
    assert.equal(useSigstoreAttachments(await loadRegistriesConfig(await registriesD({})), ref('registry.test/x:1')), false);
  });

  it('refuses a value that is not a boolean', async () => {
    const dir = await registriesD({ 'a.yaml': 'docker:\n  registry.test:\n    use-sigstore-attachments: "yes"\n' });
    await assert.rejects(loadRegistriesConfig(dir), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /use-sigstore-attachments is not true or false/.test(e.message));
  });

  it('gates the registry source: the registry is asked only when registries.d says so', async () => {
    const asked: string[] = [];
    const source = {
      getSigstoreSignatures: async (d: string) => {
        asked.push(d);
        return [cosign];
      },
    } as unknown as ImageSource;
    const digest = `sha256:${'a'.repeat(64)}`;
    const on = await registriesD({ 'a.yaml': 'docker:\n  registry.test/on:\n    use-sigstore-attachments: true\n' });
    assert.deepEqual(await registrySigstoreSource(ref('registry.test/off:1'), source, { registriesDir: on })(digest), []);
    assert.deepEqual(asked, []);
    assert.deepEqual(await registrySigstoreSource(ref('registry.test/on:1'), source, { registriesDir: on })(digest), [cosign]);
    assert.deepEqual(asked, [digest]);
  });
});

describe('store: sigstore signatures in the image record', () => {
  it('encodes and decodes each kind exactly, and refuses unknown fields', () => {
    for (const s of [cosign, bundle, { kind: 'cosign', payload: Buffer.from('p'), signature: 's' } as UntrustedSigstoreSignature]) {
      assert.deepEqual(decodeSigstoreSignature(JSON.parse(JSON.stringify(encodeSigstoreSignature(s)))), s);
    }
    assert.throws(() => decodeSigstoreSignature({ ...encodeSigstoreSignature(cosign), extra: 'x' }), /unknown fields/);
    assert.throws(() => decodeSigstoreSignature({ kind: 'other' }), /unknown/);
  });

  it('keeps them with the image, accumulating each once', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/x', data: 'x' }]);
    const image = imageOf([tar], 'sigstore');
    await store.importLayer(image.diffIds[0]!, streamOf(tar));
    await store.putImage({ ...image, signatures: [] });
    assert.deepEqual((await store.getImage(image.manifestDigest))!.sigstoreSignatures, []);
    await store.putImage({ ...image, signatures: [], sigstoreSignatures: [cosign] });
    await store.putImage({ ...image, signatures: [], sigstoreSignatures: [cosign, bundle] });
    const stored = (await Store.open(box.root).then((s) => s.getImage(image.manifestDigest)))!;
    assert.deepEqual(stored.sigstoreSignatures, [cosign, bundle]);
  });
});
