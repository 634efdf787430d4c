/**
 * Finding an image's sigstore signatures in its registry (reading only; the
 * push side is elsewhere):
 *
 * - cosign's attachments: the tag `sha256-HEX.sig` of the repository holds an
 *   OCI manifest whose layers are simple-signing payloads, each with its
 *   signature, certificate, chain and Rekor SET in the layer's annotations.
 * - Sigstore bundles (v0.3, cosign v3): referrers of the manifest with that
 *   artifact type, from the referrers API or, where the registry has none
 *   (404), from the tag-schema fallback: the tag `sha256-HEX` holding an OCI
 *   index of the referrers.
 *
 * Everything fetched is capped and strictly parsed, every blob is verified
 * against its digest as it streams, and nothing is believed: trust/ decides.
 * A missing tag is "no signatures"; any other failure is an error (trust
 * fails closed on it).
 */
import type { IncomingMessage } from 'node:http';
import { BerthError } from '../../errors.ts';
import { algorithmOf, digestOf, verifiedStream, type Digest } from '../../image/digest.ts';
import { MediaType, parseJson, parseManifest, type Descriptor, type ImageManifest } from '../../image/manifest.ts';
import {
  ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_SIGNATURE, COSIGN_SIMPLESIGNING_MEDIA_TYPE,
  cosignSignatureTag, SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
  type UntrustedCosignAttachment, type UntrustedSigstoreBundle, type UntrustedSigstoreSignature,
} from '../../image/sigstore.ts';
import type { MinRate } from '../types.ts';
import { readCapped } from './client.ts';

/** The attachment manifest and each referrers index: signatures are small, a document this big is not one. */
export const MAX_SIGSTORE_MANIFEST_BYTES = 1024 * 1024;
/** Attachments (layers) or bundles read per image; more is refused rather than cut (fail closed). */
export const MAX_SIGSTORE_SIGNATURES = 32;
/** A simple-signing payload blob. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** A Sigstore bundle blob (certificate chain, transparency log entry, signature). */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** What the fetcher needs from the registry, already scoped and authorized for the repository. */
export interface RegistryReader {
  /** The repository, for paths. */
  readonly repository: string;
  /** For messages. */
  readonly description: string;
  readonly minRate: MinRate | null;
  /** GET a path of the registry; the response whatever its status. */
  get(path: string, accept?: readonly string[]): Promise<IncomingMessage>;
  /** Throws the registry's error (one line) unless the response is 200. */
  expectOk(res: IncomingMessage, what: string): Promise<void>;
}

const invalid = (what: string, why: string): BerthError =>
  new BerthError('MANIFEST_INVALID', `${what} is invalid: ${why}`, { hint: 'the registry holds a malformed signature; remove or re-push it' });

/** A manifest or index by tag or digest; undefined on 404. */
async function getDocument(r: RegistryReader, ref: string, accept: readonly string[], what: string): Promise<{ bytes: Buffer; contentType: string | undefined } | undefined> {
  const res = await r.get(`/v2/${r.repository}/manifests/${ref}`, accept);
  if (res.statusCode === 404) {
    res.resume();
    return undefined;
  }
  await r.expectOk(res, what);
  const bytes = await readCapped(res, MAX_SIGSTORE_MANIFEST_BYTES, what, r.minRate);
  return { bytes, contentType: res.headers['content-type']?.split(';')[0]?.trim() || undefined };
}

/** A small blob, refused above `cap` before it is requested, digest- and size-verified as it streams. */
async function getSmallBlob(r: RegistryReader, d: Descriptor, cap: number, what: string): Promise<Buffer> {
  if (d.size > cap) throw invalid(what, `it is ${d.size} bytes, the limit is ${cap}`);
  const res = await r.get(`/v2/${r.repository}/blobs/${d.digest}`);
  if (res.statusCode === 404) {
    res.resume();
    throw new BerthError('IMAGE_NOT_FOUND', `${what} (${d.digest}) is missing from ${r.description}`, { hint: 'the signature was pushed incompletely; push it again' });
  }
  await r.expectOk(res, what);
  const chunks: Buffer[] = [];
  for await (const chunk of verifiedStream(res, d.digest, d.size, what)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** cosign's attachments of `manifestDigest`: [] when the `.sig` tag does not exist. */
export async function fetchCosignAttachments(r: RegistryReader, manifestDigest: Digest): Promise<UntrustedCosignAttachment[]> {
  const tag = cosignSignatureTag(manifestDigest);
  const what = `signature manifest ${tag} of ${r.description}`;
  const doc = await getDocument(r, tag, [MediaType.ociManifest], what);
  if (doc === undefined) return [];
  const m = parseManifest(doc.bytes, doc.contentType, what);
  if (m.kind !== 'manifest' || m.mediaType !== MediaType.ociManifest) throw invalid(what, `it is a ${m.mediaType}, not an OCI image manifest`);
  const layers = m.layers.filter((l) => l.mediaType === COSIGN_SIMPLESIGNING_MEDIA_TYPE);
  if (layers.length > MAX_SIGSTORE_SIGNATURES) throw invalid(what, `it holds ${layers.length} signatures, the limit is ${MAX_SIGSTORE_SIGNATURES}`);
  const out: UntrustedCosignAttachment[] = [];
  for (const [i, layer] of layers.entries()) {
    const label = `signature ${i + 1} in ${what}`;
    const a = layer.annotations ?? {};
    const signature = a[ANNOTATION_SIGNATURE];
    if (signature === undefined || signature === '') throw invalid(label, `it has no ${ANNOTATION_SIGNATURE} annotation`);
    const payload = await getSmallBlob(r, layer, MAX_PAYLOAD_BYTES, `payload of ${label}`);
    const att: UntrustedCosignAttachment = { kind: 'cosign', payload, signature };
    const certificate = a[ANNOTATION_CERTIFICATE];
    const chain = a[ANNOTATION_CHAIN];
    const rekorBundle = a[ANNOTATION_BUNDLE];
    if (certificate !== undefined && certificate !== '') att.certificate = certificate;
    if (chain !== undefined && chain !== '') att.chain = chain;
    if (rekorBundle !== undefined && rekorBundle !== '') att.rekorBundle = rekorBundle;
    out.push(att);
  }
  return out;
}

/** The tag-schema fallback's tag for a digest: sha256:HEX -> sha256-HEX. */
export function referrersTag(manifestDigest: Digest): string {
  return manifestDigest.replace(':', '-');
}

/**
 * The referrers index of `manifestDigest` limited to `artifactType`: from the
 * referrers API, else (404: the registry has none) the fallback tag; an empty
 * list when neither has any.
 */
async function referrers(r: RegistryReader, manifestDigest: Digest, artifactType: string): Promise<Descriptor[]> {
  const apiWhat = `referrers of ${manifestDigest} in ${r.description}`;
  const res = await r.get(`/v2/${r.repository}/referrers/${manifestDigest}?artifactType=${encodeURIComponent(artifactType)}`, [MediaType.ociIndex]);
  let doc: { bytes: Buffer; contentType: string | undefined } | undefined;
  let what = apiWhat;
  if (res.statusCode === 404) {
    res.resume();
    what = `referrers tag ${referrersTag(manifestDigest)} of ${r.description}`;
    doc = await getDocument(r, referrersTag(manifestDigest), [MediaType.ociIndex], what);
    if (doc === undefined) return [];
  } else {
    await r.expectOk(res, apiWhat);
    doc = { bytes: await readCapped(res, MAX_SIGSTORE_MANIFEST_BYTES, apiWhat, r.minRate), contentType: res.headers['content-type']?.split(';')[0]?.trim() || undefined };
  }
  const index = parseManifest(doc.bytes, doc.contentType, what);
  if (index.kind !== 'index' || index.mediaType !== MediaType.ociIndex) throw invalid(what, `it is a ${index.mediaType}, not an OCI image index`);
  // The API may ignore the filter (it says so in OCI-Filters-Applied); the fallback tag lists every type.
  const wanted = index.manifests.filter((d) => d.artifactType === artifactType && d.mediaType === MediaType.ociManifest);
  if (wanted.length > MAX_SIGSTORE_SIGNATURES) throw invalid(what, `it lists ${wanted.length} bundles, the limit is ${MAX_SIGSTORE_SIGNATURES}`);
  return wanted;
}

/** The Sigstore v0.3 bundles that refer to `manifestDigest`. */
export async function fetchSigstoreBundles(r: RegistryReader, manifestDigest: Digest): Promise<UntrustedSigstoreBundle[]> {
  const out: UntrustedSigstoreBundle[] = [];
  for (const d of await referrers(r, manifestDigest, SIGSTORE_BUNDLE_V03_MEDIA_TYPE)) {
    const what = `bundle manifest ${d.digest} of ${r.description}`;
    const doc = await getDocument(r, d.digest, [MediaType.ociManifest], what);
    if (doc === undefined) throw new BerthError('IMAGE_NOT_FOUND', `${what}, listed as a referrer, is missing`, { hint: 'the bundle was pushed incompletely; push it again' });
    const m = checkedBundleManifest(doc.bytes, doc.contentType, d.digest, manifestDigest, what);
    const layer = m.layers[0]!;
    out.push({ kind: 'bundle', mediaType: layer.mediaType, bytes: await getSmallBlob(r, layer, MAX_BUNDLE_BYTES, `bundle of ${what}`) });
  }
  return out;
}

/** A referrer manifest that carries one bundle: its digest as listed, its subject the image, one bundle layer. */
function checkedBundleManifest(bytes: Buffer, contentType: string | undefined, listed: Digest, subject: Digest, what: string): ImageManifest {
  const actual = digestOf(bytes, algorithmOf(listed));
  if (actual !== listed) {
    throw new BerthError('DIGEST_MISMATCH', `${what} has digest ${actual}`, { hint: 'the registry returned other bytes than the referrers list names' });
  }
  const m = parseManifest(bytes, contentType, what);
  if (m.kind !== 'manifest' || m.mediaType !== MediaType.ociManifest) throw invalid(what, 'it is not an OCI image manifest');
  const o = parseJson(bytes, what, MAX_SIGSTORE_MANIFEST_BYTES);
  const s = o['subject'];
  const subjectDigest = s !== null && typeof s === 'object' && !Array.isArray(s) ? s['digest'] : undefined;
  if (subjectDigest !== subject) throw invalid(what, `its subject is ${typeof subjectDigest === 'string' ? subjectDigest : 'missing'}, not ${subject}`);
  if (m.layers.length !== 1 || m.layers[0]!.mediaType !== SIGSTORE_BUNDLE_V03_MEDIA_TYPE) throw invalid(what, `it must have one layer of type ${SIGSTORE_BUNDLE_V03_MEDIA_TYPE}`);
  return m;
}

/**
 * Everything the registry holds for `manifestDigest`: cosign attachments,
 * then bundles. Throws on anything but "not there".
 */
export async function fetchSigstoreSignatures(r: RegistryReader, manifestDigest: Digest): Promise<UntrustedSigstoreSignature[]> {
  // A digest of another algorithm has no cosign tag form the tools agree on.
  if (!/^sha256:[0-9a-f]{64}$/.test(manifestDigest)) return [];
  return [...(await fetchCosignAttachments(r, manifestDigest)), ...(await fetchSigstoreBundles(r, manifestDigest))];
}
