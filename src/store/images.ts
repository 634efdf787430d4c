/**
 * Image records and references.
 *
 * images/ALG-HEX (the manifest digest) is one JSON file:
 *   {"format":"berth-image","version":1,"manifestDigest":…,"created":ISO,
 *    "manifest":base64,"config":base64,"signatures":[base64…],
 *    "signedManifest":base64 (optional: the bytes the signatures sign, an index),
 *    "sigstore":[…] (optional: sigstore signatures, see encodeSigstoreSignature)}
 * Bytes are kept exactly (base64), because digests and signatures cover the
 * exact bytes. Reading a record re-checks the manifest digest and the config
 * digest, so a damaged record is never served as good.
 *
 * refs/NAME is one small JSON file {"reference":…,"digest":…} per reference
 * (like OSTree's refs). NAME is the reference with every byte outside
 * [A-Za-z0-9._-] (and a leading ".") percent-encoded; names that would
 * exceed 200 bytes are "~" + sha256(reference) instead. The reference is
 * stored inside too, so a lookup checks it got the right one.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';
import { digestOf, encodedOf, algorithmOf, parseDigest, type Digest } from '../image/digest.ts';
import { parseImageConfig, parseManifest, type ImageConfig, type ImageManifest } from '../image/manifest.ts';
import { writeFileAtomic } from '../fsutil.ts';
import { parseStrictJson } from '../strict-json.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';
import type { StoredImage } from './types.ts';

/** What an image record holds on disk: a StoredImage without what is derived from refs and layers. */
export type ImageRecord = Omit<StoredImage, 'references' | 'size'>;

const MAX_REF_BYTES = 4096;

export function digestFileName(d: Digest): string {
  return `${algorithmOf(d)}-${encodedOf(d)}`;
}

/** The digest a record file name stands for, or undefined for anything else. */
export function digestFromFileName(name: string): Digest | undefined {
  const m = /^(sha256|sha512)-([0-9a-f]+)$/.exec(name);
  if (!m) return undefined;
  try {
    return parseDigest(`${m[1]}:${m[2]}`);
  } catch {
    return undefined;
  }
}

export function corrupt(what: string, why: string): BerthError {
  return new BerthError('STORE_CORRUPT', `${what} in the store is damaged: ${why}`, {
    hint: 'run berth verify --repair, then pull the affected images again',
  });
}

/** Parse and check the manifest and config of an image; throws an Error naming the problem. */
export function checkImageBytes(manifestDigest: Digest, manifestBytes: Buffer, configBytes: Buffer): { manifest: ImageManifest; config: ImageConfig } {
  const actual = digestOf(manifestBytes, algorithmOf(manifestDigest));
  if (actual !== manifestDigest) {
    throw new BerthError('DIGEST_MISMATCH', `manifest ${manifestDigest} has digest ${actual}`, { hint: 'the manifest bytes do not belong to this digest' });
  }
  const manifest = parseManifest(manifestBytes, undefined, `manifest ${manifestDigest}`);
  if (manifest.kind !== 'manifest') throw new BerthError('MANIFEST_INVALID', `${manifestDigest} is an index, not an image manifest`, { hint: 'store the platform manifest' });
  const configDigest = digestOf(configBytes, algorithmOf(manifest.config.digest));
  if (configDigest !== manifest.config.digest) {
    throw new BerthError('DIGEST_MISMATCH', `config of ${manifestDigest} has digest ${configDigest}, its manifest says ${manifest.config.digest}`, {
      hint: 'the config bytes do not belong to this manifest',
    });
  }
  const config = parseImageConfig(configBytes, `config of ${manifestDigest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new BerthError('MANIFEST_INVALID', `${manifestDigest} lists ${manifest.layers.length} layers but its config ${config.rootfs.diff_ids.length} diff_ids`, {
      hint: 'the image is malformed',
    });
  }
  return { manifest, config };
}

/**
 * A sigstore signature as a JSON value, bytes in base64:
 * {"kind":"cosign","payload":B64,"signature":…,"certificate"?,"chain"?,"rekorBundle"?}
 * or {"kind":"bundle","mediaType":…,"bytes":B64}. Also the form bundles and
 * `berth inspect --json` use, and what makes two signatures the same.
 */
export function encodeSigstoreSignature(s: UntrustedSigstoreSignature): Record<string, string> {
  if (s.kind === 'bundle') return { kind: 'bundle', mediaType: s.mediaType, bytes: s.bytes.toString('base64') };
  return {
    kind: 'cosign',
    payload: s.payload.toString('base64'),
    signature: s.signature,
    ...(s.certificate === undefined ? {} : { certificate: s.certificate }),
    ...(s.chain === undefined ? {} : { chain: s.chain }),
    ...(s.rekorBundle === undefined ? {} : { rekorBundle: s.rekorBundle }),
  };
}

/** The inverse of encodeSigstoreSignature; throws an Error naming the problem. */
export function decodeSigstoreSignature(v: unknown): UntrustedSigstoreSignature {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a sigstore signature is not a JSON object');
  const o = v as Record<string, unknown>;
  const str = (k: string, optional = false): string | undefined => {
    const x = o[k];
    if (x === undefined && optional) return undefined;
    if (typeof x !== 'string') throw new Error(`a sigstore signature's ${k} is not a string`);
    return x;
  };
  const keys = Object.keys(o);
  if (o['kind'] === 'bundle') {
    if (keys.some((k) => !['kind', 'mediaType', 'bytes'].includes(k))) throw new Error('a sigstore bundle has unknown fields');
    return { kind: 'bundle', mediaType: str('mediaType')!, bytes: Buffer.from(str('bytes')!, 'base64') };
  }
  if (o['kind'] !== 'cosign') throw new Error(`sigstore signature kind ${JSON.stringify(o['kind'])} is unknown`);
  if (keys.some((k) => !['kind', 'payload', 'signature', 'certificate', 'chain', 'rekorBundle'].includes(k))) throw new Error('a cosign signature has unknown fields');
  const out: UntrustedSigstoreSignature = { kind: 'cosign', payload: Buffer.from(str('payload')!, 'base64'), signature: str('signature')! };
  const certificate = str('certificate', true);
  const chain = str('chain', true);
  const rekorBundle = str('rekorBundle', true);
  if (certificate !== undefined) out.certificate = certificate;
  if (chain !== undefined) out.chain = chain;
  if (rekorBundle !== undefined) out.rekorBundle = rekorBundle;
  return out;
}

/**
 * A sigstore.json file (a bundle's, a shared store image's): a JSON list of
 * at most `max` encoded signatures, parsed strictly. Throws an Error naming
 * the problem; the caller says whose file it was.
 */
export function decodeSigstoreList(untrustedBytes: Buffer, max: number): UntrustedSigstoreSignature[] {
  const v = parseStrictJson(untrustedBytes);
  if (!Array.isArray(v)) throw new Error('not a JSON list');
  if (v.length > max) throw new Error(`more than ${max}`);
  return v.map(decodeSigstoreSignature);
}

/** sigstore.json's bytes for `signatures` (decodeSigstoreList reads them). */
export function encodeSigstoreList(signatures: readonly UntrustedSigstoreSignature[]): Buffer {
  return Buffer.from(`${JSON.stringify(signatures.map(encodeSigstoreSignature))}\n`);
}

/** Whether two sigstore signatures are the same (to keep each once). */
export function sameSigstoreSignature(a: UntrustedSigstoreSignature, b: UntrustedSigstoreSignature): boolean {
  return JSON.stringify(encodeSigstoreSignature(a)) === JSON.stringify(encodeSigstoreSignature(b));
}

export function encodeImageRecord(r: {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  configBytes: Buffer;
  signatures: Buffer[];
  sigstoreSignatures?: UntrustedSigstoreSignature[];
  signedManifestBytes?: Buffer | undefined;
  created: string;
}): string {
  return `${JSON.stringify({
    format: 'berth-image',
    version: 1,
    manifestDigest: r.manifestDigest,
    created: r.created,
    manifest: r.manifestBytes.toString('base64'),
    config: r.configBytes.toString('base64'),
    signatures: r.signatures.map((s) => s.toString('base64')),
    ...(r.signedManifestBytes === undefined ? {} : { signedManifest: r.signedManifestBytes.toString('base64') }),
    ...(r.sigstoreSignatures === undefined || r.sigstoreSignatures.length === 0 ? {} : { sigstore: r.sigstoreSignatures.map(encodeSigstoreSignature) }),
  })}\n`;
}

/** Read and check an image record; undefined when absent, STORE_CORRUPT when damaged. */
export async function readImageRecord(imagesDir: string, digest: Digest): Promise<ImageRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(imagesDir, digestFileName(digest)), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return decodeImageRecord(text, digest);
  } catch (e) {
    throw corrupt(`image record ${digest}`, e instanceof Error ? e.message : String(e));
  }
}

export function decodeImageRecord(text: string, digest: Digest): ImageRecord {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o['format'] !== 'berth-image' || o['version'] !== 1) throw new Error('not a berth image record (version 1)');
  if (o['manifestDigest'] !== digest) throw new Error(`the record is for ${String(o['manifestDigest'])}`);
  const b64 = (x: unknown): Buffer => {
    if (typeof x !== 'string') throw new Error('a byte field is not a string');
    return Buffer.from(x, 'base64');
  };
  const sigs = o['signatures'];
  if (!Array.isArray(sigs)) throw new Error('signatures is not a list');
  const created = o['created'];
  if (typeof created !== 'string') throw new Error('created is not a string');
  const manifestBytes = b64(o['manifest']);
  const configBytes = b64(o['config']);
  const { manifest, config } = checkImageBytes(digest, manifestBytes, configBytes);
  const sigstore = o['sigstore'] ?? [];
  if (!Array.isArray(sigstore)) throw new Error('sigstore is not a list');
  const record: ImageRecord = { manifestDigest: digest, manifestBytes, configBytes, manifest, config, signatures: sigs.map(b64), sigstoreSignatures: sigstore.map(decodeSigstoreSignature), created };
  if (o['signedManifest'] !== undefined) record.signedManifestBytes = b64(o['signedManifest']);
  return record;
}

export async function listImageDigests(imagesDir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const name of await readdir(imagesDir)) {
    const d = digestFromFileName(name);
    if (d) out.push(d);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------
// references

export function refFileName(ref: string): string {
  if (ref === '' || ref.includes('\0') || Buffer.byteLength(ref) > MAX_REF_BYTES) {
    throw new BerthError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(ref.slice(0, 200))}`, { hint: 'a reference is a non-empty string without NUL bytes' });
  }
  let out = '';
  for (const byte of Buffer.from(ref, 'utf8')) {
    const c = String.fromCharCode(byte);
    const plain = /[A-Za-z0-9_-]/.test(c) || (c === '.' && out !== '');
    out += plain ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out.length <= 200 ? out : `~${createHash('sha256').update(ref).digest('hex')}`;
}

export async function writeRef(refsDir: string, stagingDir: string, ref: string, digest: Digest): Promise<void> {
  await writeFileAtomic(join(refsDir, refFileName(ref)), `${JSON.stringify({ reference: ref, digest })}\n`, { tempDir: stagingDir });
}

export async function readRef(refsDir: string, ref: string): Promise<Digest | undefined> {
  const r = await readRefFile(join(refsDir, refFileName(ref)));
  return r !== undefined && r.reference === ref ? r.digest : undefined;
}

export async function removeRef(refsDir: string, ref: string): Promise<boolean> {
  const file = join(refsDir, refFileName(ref));
  const r = await readRefFile(file);
  if (r === undefined || r.reference !== ref) return false;
  await unlink(file);
  return true;
}

/**
 * Every reference -> digest. Unreadable ref files are skipped (they resolve
 * to nothing), unless `strict` (gc: a reference it cannot read might be what
 * keeps an image).
 */
export async function listRefs(refsDir: string, strict = false): Promise<{ reference: string; digest: Digest; file: string }[]> {
  const out: { reference: string; digest: Digest; file: string }[] = [];
  for (const name of await readdir(refsDir)) {
    const file = join(refsDir, name);
    const r = await readRefFile(file).catch((e: unknown) => {
      if (strict) throw e;
      return undefined;
    });
    if (r) out.push({ ...r, file });
  }
  return out;
}

async function readRefFile(file: string): Promise<{ reference: string; digest: Digest } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw corrupt(`reference file ${file}`, 'not JSON');
  }
  if (typeof v !== 'object' || v === null) throw corrupt(`reference file ${file}`, 'not a JSON object');
  const { reference, digest } = v as { reference?: unknown; digest?: unknown };
  if (typeof reference !== 'string' || typeof digest !== 'string') throw corrupt(`reference file ${file}`, 'missing fields');
  return { reference, digest: parseDigest(digest) };
}
