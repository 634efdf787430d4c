/**
 * Sigstore bundles v0.3 (application/vnd.dev.sigstore.bundle.v0.3+json), as
 * cosign v3 signs images: a DSSE envelope holding an in-toto Statement v1
 * whose subject is the manifest digest (predicateType
 * https://sigstore.dev/cosign/sign/v1), a Fulcio certificate or a public key,
 * and a Rekor v1 "dsse" entry with its SET (inclusionPromise) and, usually,
 * an inclusion proof with a signed checkpoint. All verified offline against
 * the policy's material or the scope's pinned trusted_root.json.
 *
 * What berth refuses on purpose: messageSignature bundles (they do not say
 * which image they sign), certificate chains in the bundle (v0.3 forbids
 * them), entries without a SET (Rekor v2 / RFC 3161 timestamps are not
 * supported yet), and anything not in the shapes below.
 */
import { createHash } from 'node:crypto';
import { SIGSTORE_BUNDLE_V03_MEDIA_TYPE, type UntrustedSigstoreBundle } from '../../image/sigstore.ts';
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from '../../strict-json.ts';
import { transportOf } from '../../transport/index.ts';
import { parseDockerIdentity, type DockerIdentity } from '../identity.ts';
import { identityMismatch } from '../match.ts';
import { keyName, verifyLeaf, type SigstoreCheck, type Signer } from './attachment.ts';
import { decodeBase64, jsonObject, jsonString, parsePem, reject } from './encoding.ts';
import { verifySignature, type PublicKey } from './keys.ts';
import { verifySetSignature } from './rekor.ts';
import type { ScopeExtras } from './side-file.ts';
import { casAt, loadTrustedRoot, tlogKeysAt, type TrustedRoot } from './trusted-root.ts';
import { parseCertificate, type Certificate } from './x509.ts';

const MAX_BUNDLE_BYTES = 1024 * 1024;
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

const obj = jsonObject;
const str = jsonString;
const b64 = (o: JsonObject, k: string, where: string): Buffer => decodeBase64(str(o, k, where), `${where}.${k}`);
/** protobuf-JSON int64: a decimal string */
const int64 = (o: JsonObject, k: string, where: string): number => {
  const v = str(o, k, where);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v) || !Number.isSafeInteger(Number(v))) return reject(`${where}.${k} is not a non-negative int64 string`);
  return Number(v);
};

/** DSSE's pre-authentication encoding: what the signature covers. */
export const pae = (type: string, payload: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

interface Envelope {
  payload: Buffer;
  payloadType: string;
  signature: Buffer;
}

function parseEnvelope(v: JsonValue | undefined): Envelope {
  const e = obj(v, 'dsseEnvelope', ['payload', 'payloadType', 'signatures']);
  const payloadType = str(e, 'payloadType', 'dsseEnvelope');
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) reject(`dsseEnvelope.payloadType is ${JSON.stringify(payloadType.slice(0, 100))}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const sigs = e['signatures'];
  if (!Array.isArray(sigs) || sigs.length !== 1) return reject('dsseEnvelope must hold exactly one signature');
  const s = obj(sigs[0], 'dsseEnvelope.signatures[0]', ['sig'], ['keyid']);
  return { payload: b64(e, 'payload', 'dsseEnvelope'), payloadType, signature: b64(s, 'sig', 'dsseEnvelope.signatures[0]') };
}

/** The in-toto statement: the subject naming this manifest, and the identity it claims (its name, if any). */
function checkStatement(c: SigstoreCheck, payload: Buffer, signer: Signer): void {
  let doc: JsonValue;
  try {
    doc = parseStrictJson(payload);
  } catch (e) {
    return reject(`the in-toto statement is not valid JSON: ${(e as Error).message}`);
  }
  const st = obj(doc, 'the in-toto statement', ['_type', 'subject', 'predicateType'], ['predicate']);
  if (st['_type'] !== IN_TOTO_STATEMENT_V1) reject(`the in-toto statement's _type is not ${IN_TOTO_STATEMENT_V1}`);
  if (st['predicateType'] !== COSIGN_SIGN_PREDICATE) reject(`the bundle is not an image signature (predicateType ${JSON.stringify(String(st['predicateType']).slice(0, 100))}, not ${COSIGN_SIGN_PREDICATE})`);
  if (st['predicate'] !== undefined && !isJsonObject(st['predicate'])) reject('the in-toto statement\'s predicate is not an object');
  const subjects = st['subject'];
  if (!Array.isArray(subjects) || subjects.length === 0) return reject('the in-toto statement has no subject');
  const digests: string[] = [];
  let match: { name: string | undefined } | undefined;
  for (const [i, sv] of subjects.entries()) {
    const s = obj(sv, `subject[${i}]`, ['digest'], ['name', 'annotations']);
    const d = s['digest'];
    if (!isJsonObject(d)) return reject(`subject[${i}].digest is not an object`);
    const name = s['name'] === undefined || s['name'] === '' ? undefined : str(s, 'name', `subject[${i}]`);
    for (const [alg, hex] of Object.entries(d)) {
      if (typeof hex !== 'string') reject(`subject[${i}].digest.${alg} is not a string`);
      if (alg !== 'sha256' && alg !== 'sha512') continue;
      digests.push(`${alg}:${hex as string}`);
      const actual = createHash(alg).update(c.manifestBytes).digest('hex');
      if (hex === actual) match ??= { name };
    }
  }
  if (match === undefined) {
    reject(`signed by ${signer} for ${digests.join(', ').slice(0, 300) || 'no sha256/sha512 digest'}, but this image's manifest is sha256:${createHash('sha256').update(c.manifestBytes).digest('hex')}`);
    return;
  }
  // cosign v3 names no image in the statement: the claim is then "this digest,
  // in the repository it is pulled from" (docs: trust section).
  let claimed: DockerIdentity;
  if (match.name !== undefined) {
    try {
      claimed = parseDockerIdentity(match.name);
    } catch (e) {
      return reject(`the statement's subject name: ${(e as Error).message}`);
    }
  } else {
    const registryImage = transportOf(c.image).trust?.identity(c.image);
    if (registryImage === undefined) return reject('the bundle names no image, and this image has no registry identity to stand for it');
    claimed = { name: `${registryImage.registry}/${registryImage.repository}`, tag: undefined, digest: undefined };
  }
  const mismatch = identityMismatch(c.requirement.signedIdentity, c.image, claimed);
  if (mismatch !== undefined) reject(`signed by ${signer}, but it ${mismatch} (signedIdentity${match.name === undefined ? '; the bundle names no image, only this repository stands for it' : ''})`);
}

/** RFC 6962 inclusion of `body` in the tree whose checkpoint the log key signed. */
function checkInclusionProof(v: JsonValue | undefined, body: Buffer, logKey: PublicKey, logIndex: number): void {
  const p = obj(v, 'inclusionProof', ['logIndex', 'rootHash', 'treeSize', 'hashes', 'checkpoint']);
  const index = BigInt(int64(p, 'logIndex', 'inclusionProof'));
  const size = BigInt(int64(p, 'treeSize', 'inclusionProof'));
  if (Number(index) !== logIndex) reject('inclusionProof.logIndex is not the entry\'s');
  const root = b64(p, 'rootHash', 'inclusionProof');
  const hashesV = p['hashes'];
  if (!Array.isArray(hashesV) || hashesV.length > 64) return reject('inclusionProof.hashes is not an array of at most 64 hashes');
  const hashes = hashesV.map((h, i) => (typeof h === 'string' ? decodeBase64(h, `inclusionProof.hashes[${i}]`) : reject(`inclusionProof.hashes[${i}] is not a string`)));
  if (index >= size) reject('inclusionProof.logIndex is outside the tree');
  const node = (l: Buffer, r: Buffer) => createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest();
  const diff = index ^ (size - 1n);
  const inner = diff === 0n ? 0 : diff.toString(2).length;
  const border = (index >> BigInt(inner)).toString(2).replace(/0/g, '').length;
  if (hashes.length !== inner + border) reject('inclusionProof has the wrong number of hashes');
  let h = createHash('sha256').update(Buffer.from([0])).update(body).digest();
  hashes.forEach((x, i) => {
    h = i < inner ? (((index >> BigInt(i)) & 1n) === 1n ? node(x, h) : node(h, x)) : node(x, h);
  });
  if (!h.equals(root)) reject('the inclusion proof does not lead to its root hash');
  // The checkpoint: "origin\nsize\nbase64(root)\n[other lines]\n\n— name base64(keyhint||sig)\n"
  const envelope = str(obj(p['checkpoint'], 'inclusionProof.checkpoint', ['envelope']), 'envelope', 'checkpoint');
  const split = envelope.indexOf('\n\n');
  if (split < 0 || envelope.length > 64 * 1024) return reject('the checkpoint is not a signed note');
  const note = envelope.slice(0, split + 1);
  const lines = note.split('\n');
  if (lines[1] !== size.toString() || lines[2] !== root.toString('base64')) reject('the checkpoint is for another tree than the inclusion proof');
  const hint = createHash('sha256').update(logKey.spki).digest().subarray(0, 4);
  const signed = [...envelope.slice(split + 2).matchAll(/^\u2014 (\S+) (\S+)$/gm)].some((m) => {
    const raw = Buffer.from(m[2] as string, 'base64');
    return raw.length > 4 && raw.subarray(0, 4).equals(hint) && verifySignature(logKey, Buffer.from(note), raw.subarray(4));
  });
  if (!signed) reject('the checkpoint is not signed by the Rekor key');
}

/** One tlog entry: SET by a trusted log (key chosen by time when a trusted root is pinned), body binding this envelope. Returns integratedTime (s). */
function checkTlogEntry(v: JsonValue, i: number, keysAt: (ms: number) => readonly PublicKey[], env: Envelope, verifierDer: Buffer): number {
  const w = `tlogEntries[${i}]`;
  const e = obj(v, w, ['logIndex', 'logId', 'kindVersion', 'integratedTime', 'canonicalizedBody'], ['inclusionPromise', 'inclusionProof']);
  const kv = obj(e['kindVersion'], `${w}.kindVersion`, ['kind', 'version']);
  if (kv['kind'] !== 'dsse' || kv['version'] !== '0.0.1') reject(`${w} is a ${JSON.stringify(kv['kind'])} ${JSON.stringify(kv['version'])} entry, not dsse 0.0.1`);
  if (e['inclusionPromise'] === undefined) reject(`${w} has no inclusionPromise (SET): entries without one (Rekor v2) are not supported`);
  const set = b64(obj(e['inclusionPromise'], `${w}.inclusionPromise`, ['signedEntryTimestamp']), 'signedEntryTimestamp', `${w}.inclusionPromise`);
  const logIndex = int64(e, 'logIndex', w);
  const integratedTime = int64(e, 'integratedTime', w);
  const logID = b64(obj(e['logId'], `${w}.logId`, ['keyId']), 'keyId', `${w}.logId`).toString('hex');
  const bodyB64 = str(e, 'canonicalizedBody', w);
  const logKey = verifySetSignature(keysAt(integratedTime * 1000), set, { body: bodyB64, integratedTime, logIndex, logID });
  const body = decodeBase64(bodyB64, `${w}.canonicalizedBody`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(body);
  } catch (err) {
    return reject(`the Rekor entry body is not valid JSON: ${(err as Error).message}`);
  }
  const top = obj(doc, 'the Rekor entry body', ['apiVersion', 'kind', 'spec']);
  if (top['kind'] !== 'dsse' || top['apiVersion'] !== '0.0.1') reject('the Rekor entry body is not dsse 0.0.1');
  const spec = obj(top['spec'], 'the Rekor entry spec', ['payloadHash', 'signatures'], ['envelopeHash']);
  const ph = obj(spec['payloadHash'], 'spec.payloadHash', ['algorithm', 'value']);
  if (ph['algorithm'] !== 'sha256' || ph['value'] !== createHash('sha256').update(env.payload).digest('hex')) reject('the Rekor entry is for another payload (payloadHash does not match)');
  const sigs = spec['signatures'];
  if (!Array.isArray(sigs) || sigs.length !== 1) return reject('the Rekor entry must record exactly one signature');
  const s = obj(sigs[0], 'spec.signatures[0]', ['signature', 'verifier']);
  if (!b64(s, 'signature', 'spec.signatures[0]').equals(env.signature)) reject('the Rekor entry is for another signature');
  const pem = parsePem(b64(s, 'verifier', 'spec.signatures[0]').toString('latin1'), 'the Rekor entry verifier');
  if (pem.length !== 1 || !(pem[0] as { der: Buffer }).der.equals(verifierDer)) reject('the Rekor entry is for another key or certificate');
  if (e['inclusionProof'] !== undefined) checkInclusionProof(e['inclusionProof'], body, logKey, logIndex);
  return integratedTime;
}

export async function verifyBundle(c: SigstoreCheck, b: UntrustedSigstoreBundle, extras: ScopeExtras): Promise<Signer> {
  if (b.mediaType !== SIGSTORE_BUNDLE_V03_MEDIA_TYPE) reject(`bundles of media type ${JSON.stringify(b.mediaType.slice(0, 100))} are not supported (only ${SIGSTORE_BUNDLE_V03_MEDIA_TYPE})`);
  if (b.bytes.length > MAX_BUNDLE_BYTES) reject(`the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(b.bytes);
  } catch (e) {
    return reject(`the bundle is not valid JSON: ${(e as Error).message}`);
  }
  const top = obj(doc, 'the bundle', ['mediaType', 'verificationMaterial'], ['dsseEnvelope', 'messageSignature']);
  if (top['mediaType'] !== SIGSTORE_BUNDLE_V03_MEDIA_TYPE) reject(`the bundle's mediaType is ${JSON.stringify(String(top['mediaType']).slice(0, 100))}, not ${SIGSTORE_BUNDLE_V03_MEDIA_TYPE}`);
  if (top['messageSignature'] !== undefined) reject('the bundle holds a messageSignature, which does not say which image it signs (only DSSE image signatures are accepted)');
  const env = parseEnvelope(top['dsseEnvelope']);
  const vm = obj(top['verificationMaterial'], 'verificationMaterial', ['tlogEntries'], ['certificate', 'publicKey', 'timestampVerificationData']);
  if ((vm['certificate'] === undefined) === (vm['publicKey'] === undefined)) reject('verificationMaterial must hold exactly one of certificate and publicKey');
  const entries = vm['tlogEntries'];
  if (!Array.isArray(entries) || entries.length > 8) return reject('verificationMaterial.tlogEntries is not an array of at most 8 entries');

  const r = c.requirement;
  const m = c.material;
  let root: TrustedRoot | undefined;
  if (extras.trustedRoot !== undefined && (r.fulcio !== undefined || m.rekorKeys !== undefined)) root = await loadTrustedRoot(extras.trustedRoot);
  const keysAt = (ms: number): readonly PublicKey[] => (root === undefined ? (m.rekorKeys ?? []) : tlogKeysAt(root, ms));
  const signedData = pae(env.payloadType, env.payload);

  /** The first tlog entry that verifies; its integratedTime (s). */
  const tlogTime = (verifierDer: Buffer): number => {
    if (entries.length === 0) return reject('the bundle has no Rekor entry, which this requirement needs');
    const reasons: string[] = [];
    for (const [i, e] of entries.entries()) {
      try {
        return checkTlogEntry(e, i, keysAt, env, verifierDer);
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    return reject(reasons.join('; '));
  };

  let signer: Signer;
  if (m.keys !== undefined) {
    if (vm['publicKey'] === undefined) reject('the bundle carries a certificate, this requirement trusts public keys');
    const key = m.keys.find((k) => verifySignature(k, signedData, env.signature));
    if (key === undefined) return reject(`the DSSE signature does not verify with the policy's ${m.keys.length === 1 ? 'key' : `${m.keys.length} keys`} (wrong key or tampered payload)`);
    if (m.rekorKeys !== undefined) tlogTime(key.spki);
    signer = keyName(key);
  } else {
    if (vm['certificate'] === undefined) reject('the bundle carries no certificate, which this requirement needs');
    const leaf: Certificate = parseCertificate(b64(obj(vm['certificate'], 'verificationMaterial.certificate', ['rawBytes']), 'rawBytes', 'verificationMaterial.certificate'), 'the certificate');
    const trustedRoot = root;
    signer = verifyLeaf(c, leaf, [], () => tlogTime(leaf.der), trustedRoot === undefined || r.fulcio === undefined ? undefined : (at) => casAt(trustedRoot, at));
    if (!verifySignature(leaf.publicKey, signedData, env.signature)) reject(`the DSSE signature does not verify with the certificate of ${signer} (tampered payload or signature)`);
  }
  checkStatement(c, env.payload, signer);
  return signer;
}
