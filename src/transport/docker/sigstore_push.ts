/**
 * Pushing a cosign signature to a registry, in cosign's layout: the tag
 * `sha256-HEX.sig` of the signed manifest's repository holds an OCI image
 * manifest whose layers are the signatures, one simple-signing payload blob
 * each (media type application/vnd.dev.cosign.simplesigning.v1+json) with the
 * signature in the annotation dev.cosignproject.cosign/signature, and whose
 * config is the image config go-containerregistry gives that stack of layers.
 * A new signature is appended: the layers already there are kept exactly
 * (with their certificates and bundles), so signers add to each other's work.
 * Pushed to the registry itself, never to a mirror.
 */
import type { IncomingMessage } from 'node:http';
import { BerthError } from '../../errors.ts';
import { digestOf, isDigest, type Digest } from '../../image/digest.ts';
import { MAX_MANIFEST_BYTES, MediaType } from '../../image/manifest.ts';
import { registryApiHost, type DockerReference } from '../../image/reference.ts';
import { loadRegistriesConf, pullSources } from '../../image/registries-conf.ts';
import { ANNOTATION_SIGNATURE, COSIGN_SIMPLESIGNING_MEDIA_TYPE, cosignSignatureTag } from '../../image/sigstore.ts';
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from '../../strict-json.ts';
import type { SourceOptions } from '../types.ts';
import { CredentialStore } from './auth_file.ts';
import { loadRegistryTls } from './certs_d.ts';
import { readCapped, RegistryClient } from './client.ts';
import { minRateFromEnv } from './min_rate.ts';
import { retryPolicy } from './retry.ts';

/** More signatures than this on one manifest is not a signature set but an attack or a bug. */
const MAX_SIGNATURE_LAYERS = 1000;
const MAX_ERROR_BODY = 64 * 1024;
/** go-containerregistry's zero time, which cosign's signature images carry. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface CosignSignatureToPush {
  /** The simple-signing payload (the layer blob). */
  readonly payload: Buffer;
  /** Base64, for the dev.cosignproject.cosign/signature annotation. */
  readonly signature: string;
}

export interface PushedSignature {
  /** HOST/REPO:sha256-HEX.sig */
  readonly tag: string;
  /** false: an equal signature was already there (see `isSame`), nothing was pushed. */
  readonly added: boolean;
  /** Signature layers in the .sig manifest now. */
  readonly signatures: number;
  /** Digest of the .sig manifest as pushed (or found). */
  readonly manifestDigest: Digest;
}

type PushOptions = Pick<SourceOptions, 'tlsVerify' | 'certDir' | 'creds' | 'authFile' | 'registriesConf' | 'retry'>;

/**
 * Appends `sig` to the signatures of `signed` (the manifest digest of `ref`'s
 * repository). `isSame(untrustedSignature)` is asked for an existing layer
 * whose payload is byte-identical to `sig.payload`; when it says yes, nothing
 * is pushed (signing again is idempotent).
 */
export async function pushCosignSignature(
  ref: DockerReference,
  signed: Digest,
  sig: CosignSignatureToPush,
  isSame: (untrustedSignature: string) => boolean,
  options: PushOptions = {},
): Promise<PushedSignature> {
  const conf = await loadRegistriesConf(options.registriesConf);
  // The registry itself (the last source; the others are mirrors).
  const primary = pullSources({ ...ref, digest: undefined }, conf).at(-1)!;
  const target = primary.ref;
  const host = registryApiHost(target);
  const credentials = await new CredentialStore({ ...(options.creds === undefined ? {} : { creds: options.creds }), ...(options.authFile === undefined ? {} : { authFile: options.authFile }) }).lookup(target.registry, target.repository);
  const client = new RegistryClient({
    host,
    tlsVerify: options.tlsVerify ?? !primary.insecure,
    credentials,
    tls: await loadRegistryTls(host, options.certDir),
    retry: retryPolicy(options.retry),
    minRate: minRateFromEnv(),
  });
  const repo = target.repository;
  const scope = `repository:${repo}:pull,push`;
  const tagName = cosignSignatureTag(signed);
  const tag = `${target.registry}/${target.repository}:${tagName}`;
  try {
    const existing = await fetchSignatureManifest(client, repo, tagName, scope, tag);
    const payloadDigest = digestOf(sig.payload);
    const same = existing.layers.find((l) => l['digest'] === payloadDigest && l['size'] === sig.payload.length && typeof annotations(l)[ANNOTATION_SIGNATURE] === 'string' && isSame(annotations(l)[ANNOTATION_SIGNATURE] as string));
    if (same !== undefined && existing.bytes !== undefined) {
      return { tag, added: false, signatures: existing.layers.length, manifestDigest: digestOf(existing.bytes) };
    }
    if (existing.layers.length >= MAX_SIGNATURE_LAYERS) {
      throw new BerthError('REGISTRY_ERROR', `${tag} already holds ${existing.layers.length} signatures`, { hint: 'remove stale signatures before adding more' });
    }
    const layers: JsonValue[] = [
      ...existing.layers,
      { mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE, size: sig.payload.length, digest: payloadDigest, annotations: { [ANNOTATION_SIGNATURE]: sig.signature } },
    ];
    const config = Buffer.from(JSON.stringify(signatureImageConfig(layers.map((l) => (l as JsonObject)['digest'] as string))));
    await pushBlob(client, repo, scope, sig.payload, tag);
    await pushBlob(client, repo, scope, config, tag);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, size: config.length, digest: digestOf(config) },
        layers,
      }),
    );
    const res = await client.request('PUT', `/v2/${repo}/manifests/${tagName}`, { scope, headers: { 'content-type': MediaType.ociManifest }, body: manifest });
    await expect(res, [201], `pushing the signature manifest ${tag}`, client);
    return { tag, added: true, signatures: layers.length, manifestDigest: digestOf(manifest) };
  } finally {
    await client.close();
  }
}

const annotations = (layer: JsonObject): JsonObject => (isJsonObject(layer['annotations']) ? layer['annotations'] : {});

/** The config go-containerregistry's mutate.Append gives an empty image with these (uncompressed) layers, as cosign pushes it. */
export function signatureImageConfig(layerDigests: readonly string[]): JsonObject {
  return {
    architecture: '',
    created: ZERO_TIME,
    history: layerDigests.map(() => ({ created: ZERO_TIME })),
    os: '',
    rootfs: { type: 'layers', diff_ids: [...layerDigests] },
    config: {},
  };
}

/** The layers of the existing .sig manifest, as untrusted JSON kept verbatim; none when the tag does not exist. */
async function fetchSignatureManifest(client: RegistryClient, repo: string, tagName: string, scope: string, tag: string): Promise<{ bytes: Buffer | undefined; layers: JsonObject[] }> {
  const res = await client.get(`/v2/${repo}/manifests/${tagName}`, { scope, accept: [MediaType.ociManifest] });
  if (res.statusCode === 404) {
    res.resume();
    return { bytes: undefined, layers: [] };
  }
  await expect(res, [200], `reading ${tag}`, client);
  const untrustedBytes = await readCapped(res, MAX_MANIFEST_BYTES, `signature manifest ${tag}`, client.minRate);
  const bad = (why: string): never => {
    throw new BerthError('MANIFEST_INVALID', `the existing signature manifest ${tag} ${why}`, { hint: 'it is not what cosign writes; inspect it (skopeo inspect --raw) and delete the tag if it is garbage' });
  };
  let doc: JsonValue;
  try {
    doc = parseStrictJson(untrustedBytes);
  } catch (e) {
    return bad(`is not JSON (${(e as Error).message})`);
  }
  if (!isJsonObject(doc) || doc['schemaVersion'] !== 2) return bad('is not an image manifest (schemaVersion 2)');
  if (doc['mediaType'] !== undefined && doc['mediaType'] !== MediaType.ociManifest) return bad(`has media type ${JSON.stringify(doc['mediaType']).slice(0, 100)}`);
  const layers = doc['layers'];
  if (!Array.isArray(layers)) return bad('has no layers');
  if (layers.length > MAX_SIGNATURE_LAYERS) return bad(`has more than ${MAX_SIGNATURE_LAYERS} layers`);
  layers.forEach((l, i) => {
    if (!isJsonObject(l) || typeof l['mediaType'] !== 'string' || typeof l['digest'] !== 'string' || !isDigest(l['digest']) || typeof l['size'] !== 'number' || !Number.isSafeInteger(l['size']) || l['size'] < 0) {
      bad(`layer ${i + 1} is not a descriptor`);
    }
    if (l !== null && isJsonObject(l) && l['annotations'] !== undefined && !isJsonObject(l['annotations'])) bad(`layer ${i + 1} has annotations that are not an object`);
  });
  return { bytes: untrustedBytes, layers: layers as JsonObject[] };
}

/** Uploads a blob unless the repository has it: POST for an upload URL, then one monolithic PUT. */
async function pushBlob(client: RegistryClient, repo: string, scope: string, blob: Buffer, tag: string): Promise<void> {
  const digest = digestOf(blob);
  const head = await client.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scope });
  head.resume();
  if (head.statusCode === 200) return;
  const start = await client.request('POST', `/v2/${repo}/blobs/uploads/`, { scope, body: Buffer.alloc(0) });
  await expect(start, [202], `starting an upload for ${tag}`, client);
  start.resume();
  const location = start.headers.location;
  if (typeof location !== 'string' || location === '') throw new BerthError('REGISTRY_ERROR', `${client.host}: the upload for ${tag} got no Location`, { hint: 'the registry is misconfigured' });
  // The upload URL is the registry's (relative or absolute; behind a proxy possibly another origin, which gets no credentials).
  let url: URL;
  try {
    url = new URL(location, `http://${client.host}/`);
  } catch {
    throw new BerthError('REGISTRY_ERROR', `${client.host}: the upload for ${tag} got an invalid Location`, { hint: 'the registry is misconfigured' });
  }
  url.searchParams.set('digest', digest);
  const put = await client.request('PUT', /^[a-z][a-z0-9+.-]*:/i.test(location) ? url : `${url.pathname}${url.search}`, { scope, headers: { 'content-type': 'application/octet-stream' }, body: blob });
  await expect(put, [201], `uploading ${digest} for ${tag}`, client);
  put.resume();
}

async function expect(res: IncomingMessage, ok: readonly number[], what: string, client: RegistryClient): Promise<void> {
  if (res.statusCode !== undefined && ok.includes(res.statusCode)) return;
  const body = await readCapped(res, MAX_ERROR_BODY, `the answer to ${what}`, client.minRate).catch(() => Buffer.alloc(0));
  const detail = body.toString('utf8').replace(/\s+/g, ' ').slice(0, 200);
  if (res.statusCode === 401 || res.statusCode === 403) {
    throw new BerthError('REGISTRY_ERROR', `${client.host}: ${what}: not allowed (${res.statusCode})`, { hint: 'pushing needs credentials with push access: --creds USER:PASS or the auth file (auth.json)' });
  }
  throw new BerthError('REGISTRY_ERROR', `${client.host}: ${what}: the registry answered ${res.statusCode}${detail === '' ? '' : ` (${detail})`}`, { hint: 'check the registry' });
}
