/**
 * berth sign: vouch for a registry image with a "simple signing" signature
 * (containers-signature(5)), as `skopeo copy --sign-by` / `podman image sign`
 * do, written into the image's look-aside store (containers-registries.d(5))
 * where berth, skopeo and podman find it.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { PrivateKey } from 'openpgp';
import { BerthError } from '../errors.ts';
import { algorithmOf, digestOf, type Digest } from '../image/digest.ts';
import type { DockerReference } from '../image/reference.ts';
import { formatReference, parseImageReference } from '../transport/index.ts';
import { formatIdentity, imageIdentity, isNameOnly, parseDockerIdentity } from '../trust/identity.ts';
import { checkTrust } from '../trust/index.ts';
import { writeSignature } from '../trust/lookaside.ts';
import { buildPayload } from '../trust/payload.ts';
import { loadRegistriesConfig, lookasideBase } from '../trust/registries-d.ts';
import { readSigningKey, signPayload } from '../trust/sign.ts';
import { openImageSource } from '../transport/index.ts';
import type { OpContext } from './context.ts';

const MAX_KEY_BYTES = 16 * 1024 * 1024;

export interface SignOptions {
  image: string;
  /** A secret key file, as gpg --export-secret-keys writes it (armored or binary). */
  keyFile: string;
  /** The identity to vouch for (default: the image's own reference). */
  identity?: string;
  passphraseFile?: string;
  registriesDir?: string;
  /** When given, check afterwards that this policy accepts the image with the new signature. */
  policyPath?: string;
  tlsVerify?: boolean;
}

export interface SignResult {
  image: string;
  identity: string;
  manifestDigest: Digest;
  /** Fingerprint of the signing key's primary key. */
  fingerprint: string;
  /** The file written. */
  signature: string;
  /** The store (registries.d) it went to, and why that one. */
  store: string;
  /** With --policy: whether that policy now accepts the image, and why not. */
  policy?: { accepted: boolean; message: string };
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

function registryReference(image: string): DockerReference {
  const ref = parseImageReference(image);
  if (ref.transport === 'docker') return ref;
  if (ref.transport === 'short-name') {
    throw new BerthError('USAGE', `berth sign needs the registry host: ${image} is a short name`, { hint: 'write docker://HOST[:PORT]/REPO:TAG' });
  }
  throw new BerthError('USAGE', `berth sign signs registry images; ${ref.transport}: images have no signature store`, {
    hint: 'push the image to a registry and sign docker://HOST/REPO:TAG',
  });
}

function signedIdentity(ref: DockerReference, identity: string | undefined): string {
  if (identity === undefined) return formatIdentity(imageIdentity(ref));
  let id;
  try {
    id = parseDockerIdentity(identity.replace(/^docker:\/\//, ''));
  } catch (e) {
    throw new BerthError('USAGE', `--identity: ${(e as Error).message}`, { hint: 'write HOST[:PORT]/REPO:TAG' });
  }
  if (isNameOnly(id)) throw new BerthError('USAGE', `--identity ${identity} names no tag or digest`, { hint: 'a signature vouches for HOST/REPO:TAG (or @DIGEST)' });
  return formatIdentity(id);
}

async function readPassphrase(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  try {
    // The first line, as gpg --passphrase-file reads it.
    return (await readFile(file, 'utf8')).split(/\r?\n/)[0] ?? '';
  } catch (e) {
    throw new BerthError('USAGE', `cannot read the passphrase file ${file}: ${(e as Error).message}`);
  }
}

/** A secret key file (and the file with its passphrase), read and unlocked: what `berth sign` and the publisher sign with. */
export async function loadSigningKey(keyFile: string, passphraseFile: string | undefined): Promise<PrivateKey> {
  let keyBytes: Buffer;
  try {
    keyBytes = await readFile(keyFile);
  } catch (e) {
    throw new BerthError('USAGE', `cannot read the key file ${keyFile}: ${(e as Error).message}`);
  }
  if (keyBytes.length > MAX_KEY_BYTES) throw new BerthError('KEY_INVALID', `${keyFile} is larger than ${MAX_KEY_BYTES} bytes`);
  return readSigningKey(keyBytes, `key file ${keyFile}`, await readPassphrase(passphraseFile));
}

/** The simple-signing payload for `digest` as `identity`, signed by `key`. */
export async function signManifestDigest(digest: Digest, identity: string, key: PrivateKey): Promise<Buffer> {
  const payload = buildPayload({ manifestDigest: digest, dockerReference: identity, creator: `berth ${version}`, timestamp: Math.floor(Date.now() / 1000) });
  return signPayload(payload, key);
}

export async function sign(ctx: OpContext, options: SignOptions): Promise<SignResult> {
  const ref = registryReference(options.image);
  const image = formatReference(ref);
  const identity = signedIdentity(ref, options.identity);

  const key = await loadSigningKey(options.keyFile, options.passphraseFile);
  const fingerprint = key.getFingerprint().toUpperCase();

  // Where it goes is settled before the registry is asked anything.
  const base = lookasideBase(await loadRegistriesConfig(options.registriesDir), ref, true);
  if (!base.url.startsWith('file:')) {
    throw new BerthError('CONFIG_INVALID', `cannot write signatures to ${base.url} (${base.from}): only file:// stores are writable`, {
      hint: 'set lookaside-staging to a file:/// URL for this registry in registries.d (berth trust set --lookaside), and publish that directory',
    });
  }

  ctx.report.step(`Reading the manifest of ${image}`);
  const source = await openImageSource(ref, options.tlsVerify === undefined ? {} : { tlsVerify: options.tlsVerify });
  let untrustedManifestBytes: Buffer;
  try {
    untrustedManifestBytes = (await source.getManifest()).untrustedBytes;
  } finally {
    await source.close();
  }
  // What is signed is the digest of these exact bytes; a digest reference must agree with them.
  let manifestDigest = digestOf(untrustedManifestBytes);
  if (ref.digest !== undefined) {
    const actual = digestOf(untrustedManifestBytes, algorithmOf(ref.digest));
    if (actual !== ref.digest) {
      throw new BerthError('DIGEST_MISMATCH', `the manifest of ${image} has digest ${actual}`, { hint: 'the registry returned other bytes than the reference pins' });
    }
    manifestDigest = ref.digest;
  }

  ctx.report.step(`Signing ${manifestDigest} as ${identity} with key ${fingerprint}`);
  const signature = await signManifestDigest(manifestDigest, identity, key);
  const file = await writeSignature(base.url, ref, manifestDigest, signature);
  ctx.report.step(`Wrote ${file}`);

  const result: SignResult = { image, identity, manifestDigest, fingerprint, signature: file, store: `${base.url} (${base.from})` };
  if (options.policyPath !== undefined) {
    try {
      const verdict = await checkTrust(ref, untrustedManifestBytes, {
        policyPath: options.policyPath,
        ...(options.registriesDir === undefined ? {} : { registriesDir: options.registriesDir }),
      });
      result.policy = { accepted: true, message: verdict.requirement };
    } catch (e) {
      if (!(e instanceof BerthError)) throw e;
      result.policy = { accepted: false, message: [e.message, ...e.details].join('\n  ') };
      ctx.report.warn(`signed, but ${options.policyPath} does not accept the image yet: ${e.message}`);
    }
  }
  return result;
}
