/**
 * The trust material a sigstoreSigned requirement names, loaded and parsed:
 * public keys, Rekor keys, CA roots and intermediates. A file that cannot be
 * read or parsed makes the requirement refuse (fail closed), naming the file.
 */
import { readFile } from 'node:fs/promises';
import type { PemSource, SigstoreSignedRequirement } from '../policy.ts';
import { pemCertificates, reject } from './encoding.ts';
import { publicKeysFromPem, type PublicKey } from './keys.ts';
import { parseCertificate, type Certificate } from './x509.ts';

const MAX_PEM_FILE_BYTES = 1024 * 1024;

export interface SigstoreMaterial {
  readonly keys: readonly PublicKey[] | undefined;
  readonly rekorKeys: readonly PublicKey[] | undefined;
  /** fulcio's CA or pki's roots */
  readonly roots: readonly Certificate[] | undefined;
  /** pki's trusted intermediates */
  readonly intermediates: readonly Certificate[];
}

async function blobs(src: PemSource, dataName: string): Promise<{ bytes: Buffer; what: string }[]> {
  if ('datas' in src) return src.datas.map((bytes, i) => ({ bytes, what: src.datas.length === 1 ? dataName : `${dataName}[${i}]` }));
  return Promise.all(
    src.paths.map(async (p) => {
      let bytes: Buffer;
      try {
        bytes = await readFile(p);
      } catch (e) {
        return reject(`cannot read ${p}: ${(e as Error).message}`);
      }
      if (bytes.length > MAX_PEM_FILE_BYTES) reject(`${p} is larger than ${MAX_PEM_FILE_BYTES} bytes`);
      return { bytes, what: p };
    }),
  );
}

async function keysOf(src: PemSource | undefined, dataName: string): Promise<PublicKey[] | undefined> {
  if (src === undefined) return undefined;
  return (await blobs(src, dataName)).flatMap((b) => publicKeysFromPem(b.bytes, b.what));
}

async function certsOf(src: PemSource | undefined, dataName: string): Promise<Certificate[]> {
  if (src === undefined) return [];
  return (await blobs(src, dataName)).flatMap((b) => pemCertificates(b.bytes.toString('latin1'), b.what).map((der, i) => parseCertificate(der, `${b.what} certificate ${i + 1}`)));
}

/** Throws SigstoreRejected naming what cannot be used. */
export async function loadMaterial(r: SigstoreSignedRequirement): Promise<SigstoreMaterial> {
  const rekorKeys = await keysOf(r.rekorKeys, 'rekorPublicKeyData');
  for (const k of rekorKeys ?? []) if (!k.kind.startsWith('ecdsa')) reject('a Rekor public key is not an ECDSA key');
  let roots: Certificate[] | undefined;
  let intermediates: Certificate[] = [];
  if (r.fulcio !== undefined) roots = await certsOf(r.fulcio.ca, 'fulcio.caData');
  if (r.pki !== undefined) {
    roots = await certsOf(r.pki.caRoots, 'pki.caRootsData');
    intermediates = await certsOf(r.pki.caIntermediates, 'pki.caIntermediatesData');
  }
  return { keys: await keysOf(r.keys, 'keyData'), rekorKeys, roots, intermediates };
}
