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
import { pushCosignSignature } from '../transport/docker/sigstore_push.ts';
import { decryptPrivateKey, parseEncryptedPrivateKey, publicKeyFingerprint } from '../trust/sigstore/private-key.ts';
import { buildCosignPayload } from '../trust/sigstore/payload.ts';
import { isOwnSignature, signCosignPayload } from '../trust/sigstore/signing.ts';
import type { OpContext } from './context.ts';

const MAX_KEY_BYTES = 16 * 1024 * 1024;

export interface SignOptions {
  image: string;
  /** A secret key file, as gpg --export-secret-keys writes it (armored or binary): a signature in the look-aside store. */
  keyFile?: string;
  /** Instead: a cosign private key (cosign generate-key-pair, berth trust keygen): a signature pushed to the registry. */
  sigstoreKeyFile?: string;
  /** The cosign key's password, asked only once the key file has been read. */
  password?: () => Promise<string>;
  /** The identity to vouch for (default: the image's own reference). */
  identity?: string;
  passphraseFile?: string;
  registriesDir?: string;
  /** When given, check afterwards that this policy accepts the image with the new signature. */
  policyPath?: string;
  tlsVerify?: boolean;
  /** USER:PASS for pushing sigstore signatures (default: the auth files). */
  creds?: string;
  authFile?: string;
  certDir?: string;
}

export interface SignResult {
  image: string;
  identity: string;
  manifestDigest: Digest;
  /** Fingerprint of the signing key's primary key (gpg), or SHA256:BASE64 of the public key (sigstore). */
  fingerprint: string;
  /** The file written (gpg), or the registry tag holding the signature (sigstore). */
  signature: string;
  /** The store (registries.d) it went to, and why that one; for sigstore, the registry's attachment tag. */
  store: string;
  /** sigstore: false when the same signature was already there (nothing pushed). */
  added?: boolean;
  /** sigstore: how many signatures the .sig tag holds now. */
  signatures?: number;
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

async function readKeyFile(file: string): Promise<Buffer> {
  let keyBytes: Buffer;
  try {
    keyBytes = await readFile(file);
  } catch (e) {
    throw new BerthError('USAGE', `cannot read the key file ${file}: ${(e as Error).message}`);
  }
  if (keyBytes.length > MAX_KEY_BYTES) throw new BerthError('KEY_INVALID', `${file} is larger than ${MAX_KEY_BYTES} bytes`);
  return keyBytes;
}

/** A secret OpenPGP key file (and the file with its passphrase), read and unlocked: what `berth sign --key` and the publisher sign with. */
export async function loadSigningKey(keyFile: string, passphraseFile: string | undefined): Promise<PrivateKey> {
  return readSigningKey(await readKeyFile(keyFile), `key file ${keyFile}`, await readPassphrase(passphraseFile));
}

/** The simple-signing payload for `digest` as `identity`, signed by `key`. */
export async function signManifestDigest(digest: Digest, identity: string, key: PrivateKey): Promise<Buffer> {
  const payload = buildPayload({ manifestDigest: digest, dockerReference: identity, creator: `berth ${version}`, timestamp: Math.floor(Date.now() / 1000) });
  return signPayload(payload, key);
}

/** The manifest `ref` names and the digest a signature vouches for (a digest reference must agree with the bytes). */
async function signedManifest(ctx: OpContext, ref: DockerReference, image: string, options: SignOptions): Promise<{ untrustedManifestBytes: Buffer; manifestDigest: Digest }> {
  ctx.report.step(`Reading the manifest of ${image}`);
  const source = await openImageSource(ref, {
    ...(options.tlsVerify === undefined ? {} : { tlsVerify: options.tlsVerify }),
    ...(options.creds === undefined ? {} : { creds: options.creds }),
    ...(options.authFile === undefined ? {} : { authFile: options.authFile }),
    ...(options.certDir === undefined ? {} : { certDir: options.certDir }),
  });
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
  return { untrustedManifestBytes, manifestDigest };
}

/** With --policy: whether that policy now accepts the image, recorded in the result (and warned about). */
async function checkPolicy(ctx: OpContext, ref: DockerReference, untrustedManifestBytes: Buffer, options: SignOptions, result: SignResult): Promise<SignResult> {
  if (options.policyPath === undefined) return result;
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
  return result;
}

export async function sign(ctx: OpContext, options: SignOptions): Promise<SignResult> {
  if ((options.keyFile === undefined) === (options.sigstoreKeyFile === undefined)) {
    throw new BerthError('USAGE', 'berth sign needs exactly one of --key (OpenPGP, look-aside store) and --sigstore-key (cosign, in the registry)', {
      hint: 'berth sign --key KEY.gpg IMAGE, or berth sign --sigstore-key cosign.key IMAGE',
    });
  }
  if (options.sigstoreKeyFile !== undefined) return signSigstore(ctx, options, options.sigstoreKeyFile);
  const ref = registryReference(options.image);
  const image = formatReference(ref);
  const identity = signedIdentity(ref, options.identity);

  const key = await loadSigningKey(options.keyFile!, options.passphraseFile);
  const fingerprint = key.getFingerprint().toUpperCase();

  // Where it goes is settled before the registry is asked anything.
  const base = lookasideBase(await loadRegistriesConfig(options.registriesDir), ref, true);
  if (!base.url.startsWith('file:')) {
    throw new BerthError('CONFIG_INVALID', `cannot write signatures to ${base.url} (${base.from}): only file:// stores are writable`, {
      hint: 'set lookaside-staging to a file:/// URL for this registry in registries.d (berth trust set --lookaside), and publish that directory',
    });
  }

  const { untrustedManifestBytes, manifestDigest } = await signedManifest(ctx, ref, image, options);

  ctx.report.step(`Signing ${manifestDigest} as ${identity} with key ${fingerprint}`);
  const signature = await signManifestDigest(manifestDigest, identity, key);
  const file = await writeSignature(base.url, ref, manifestDigest, signature);
  ctx.report.step(`Wrote ${file}`);

  return checkPolicy(ctx, ref, untrustedManifestBytes, options, { image, identity, manifestDigest, fingerprint, signature: file, store: `${base.url} (${base.from})` });
}

/** Signs with a cosign key and appends the signature to the image's .sig tag in the registry (cosign's layout). */
async function signSigstore(ctx: OpContext, options: SignOptions, keyFile: string): Promise<SignResult> {
  const ref = registryReference(options.image);
  const image = formatReference(ref);
  const identity = signedIdentity(ref, options.identity);
  const keyBytes = await readKeyFile(keyFile);
  const what = `key file ${keyFile}`;
  // Checked before the password is asked for: a wrong file fails at once.
  parseEncryptedPrivateKey(keyBytes, what);
  if (options.password === undefined) throw new BerthError('KEY_PASSWORD', `${what} needs a password`, { hint: 'set COSIGN_PASSWORD or pass --passphrase-file FILE' });
  const key = await decryptPrivateKey(keyBytes, await options.password(), what);
  const fingerprint = publicKeyFingerprint(key);

  const { untrustedManifestBytes, manifestDigest } = await signedManifest(ctx, ref, image, options);
  ctx.report.step(`Signing ${manifestDigest} as ${identity} with cosign key ${fingerprint}`);
  const payload = buildCosignPayload(identity, manifestDigest);
  const signature = signCosignPayload(key, payload, what);
  const pushed = await pushCosignSignature(ref, manifestDigest, { payload, signature }, (untrusted) => isOwnSignature(key, payload, untrusted), {
    ...(options.tlsVerify === undefined ? {} : { tlsVerify: options.tlsVerify }),
    ...(options.creds === undefined ? {} : { creds: options.creds }),
    ...(options.authFile === undefined ? {} : { authFile: options.authFile }),
    ...(options.certDir === undefined ? {} : { certDir: options.certDir }),
  });
  ctx.report.step(pushed.added ? `Pushed ${pushed.tag} (${pushed.signatures} signature${pushed.signatures === 1 ? '' : 's'})` : `${pushed.tag} already holds this signature`);
  return checkPolicy(ctx, ref, untrustedManifestBytes, options, {
    image, identity, manifestDigest, fingerprint, signature: pushed.tag, store: `${pushed.tag} (the registry, cosign's layout)`, added: pushed.added, signatures: pushed.signatures,
  });

}
