/**
 * One cosign signature attachment judged against one sigstoreSigned
 * requirement, as containers/image's policy_eval_sigstore.go: find the
 * trusted public key (the policy's keys, or a certificate that chains to the
 * policy's CA and names the policy's identity), check the Rekor SET when the
 * policy pins Rekor keys, verify the signature over the payload, then (only
 * then) read the payload: its digest must be this manifest's, its identity
 * must satisfy signedIdentity. Every refusal is one SigstoreRejected line.
 */
import { createHash } from 'node:crypto';
import { algorithmOf, digestOf } from '../../image/digest.ts';
import type { UntrustedCosignAttachment } from '../../image/sigstore.ts';
import type { ImageReference } from '../../transport/reference.ts';
import { identityMismatch } from '../match.ts';
import type { SigstoreSignedRequirement } from '../policy.ts';
import { decodeBase64, pemCertificates, reject } from './encoding.ts';
import { verifySignature, type PublicKey } from './keys.ts';
import type { SigstoreMaterial } from './material.ts';
import { MAX_COSIGN_PAYLOAD_BYTES, parseCosignPayload } from './payload.ts';
import { parseCosignSet, verifySet } from './rekor.ts';
import { fulcioIssuer, matchesHostname, parseCertificate, verifyChain, type Certificate } from './x509.ts';

const MAX_SIGNATURE_BYTES = 16 * 1024;
const MAX_CHAIN_CERTS = 10;

export interface SigstoreCheck {
  readonly requirement: SigstoreSignedRequirement;
  readonly material: SigstoreMaterial;
  /** URI SANs berth's side file accepts for this scope, besides fulcio.subjectEmail */
  readonly subjectURIs: readonly string[];
  readonly image: ImageReference;
  readonly manifestBytes: Buffer;
  /** ms since the epoch: when a pki certificate must be valid */
  readonly now: number;
}

/** Who signed, for the verdict: "key SHA256:…" or "EMAIL/URI (issuer)". */
export type Signer = string;

export const keyName = (k: PublicKey): string => `${k.kind} key SHA256:${createHash('sha256').update(k.spki).digest('base64').replace(/=+$/, '')}`;

/** Fulcio: issuer extension equals oidcIssuer, and a SAN is subjectEmail (or a side-file URI). */
export function checkFulcioIdentity(c: SigstoreCheck, leaf: Certificate): Signer {
  const f = c.requirement.fulcio;
  if (f === undefined) return reject('internal: not a fulcio requirement');
  const issuer = fulcioIssuer(leaf);
  if (issuer !== f.oidcIssuer) reject(`the certificate's OIDC issuer is ${JSON.stringify(issuer.slice(0, 200))}, fulcio.oidcIssuer requires ${JSON.stringify(f.oidcIssuer)}`);
  if (leaf.emails.includes(f.subjectEmail)) return `${f.subjectEmail} (${issuer})`;
  const uri = leaf.uris.find((u) => c.subjectURIs.includes(u));
  if (uri !== undefined) return `${uri} (${issuer})`;
  const got = [...leaf.emails, ...leaf.uris].map((s) => JSON.stringify(s.slice(0, 200))).join(', ') || 'none';
  const want = [f.subjectEmail, ...c.subjectURIs].map((s) => JSON.stringify(s)).join(' or ');
  return reject(`the certificate is for ${got}, fulcio.subjectEmail${c.subjectURIs.length > 0 ? ' (or the scope\'s subjectURIs)' : ''} requires ${want}`);
}

/** PKI: the policy's subjectEmail and/or subjectHostname must be the certificate's. */
export function checkPkiIdentity(c: SigstoreCheck, leaf: Certificate): Signer {
  const p = c.requirement.pki;
  if (p === undefined) return reject('internal: not a pki requirement');
  if (p.subjectEmail !== undefined && !leaf.emails.includes(p.subjectEmail)) {
    reject(`the certificate is for ${leaf.emails.map((e) => JSON.stringify(e.slice(0, 200))).join(', ') || 'no email'}, pki.subjectEmail requires ${JSON.stringify(p.subjectEmail)}`);
  }
  if (p.subjectHostname !== undefined && !matchesHostname(leaf, p.subjectHostname)) {
    reject(`the certificate is for host ${leaf.dnsNames.map((e) => JSON.stringify(e.slice(0, 200))).join(', ') || 'none'}, pki.subjectHostname requires ${JSON.stringify(p.subjectHostname)}`);
  }
  return [p.subjectEmail, p.subjectHostname].filter((x) => x !== undefined).join(' ');
}

/** The leaf and the untrusted intermediates of an attachment's PEM annotations. */
export function leafAndChain(certificate: string | undefined, chain: string | undefined): { leaf: Certificate; intermediates: Certificate[] } {
  if (certificate === undefined) return reject('the signature has no certificate (dev.sigstore.cosign/certificate), which this requirement needs');
  const leafDer = pemCertificates(certificate, 'the certificate');
  if (leafDer.length !== 1) reject(`the certificate annotation holds ${leafDer.length} certificates, not 1`);
  const chainDer = chain === undefined ? [] : pemCertificates(chain, 'the certificate chain');
  if (chainDer.length > MAX_CHAIN_CERTS) reject(`the certificate chain holds more than ${MAX_CHAIN_CERTS} certificates`);
  return { leaf: parseCertificate(leafDer[0] as Buffer, 'the certificate'), intermediates: chainDer.map((d, i) => parseCertificate(d, `chain certificate ${i + 1}`)) };
}

/**
 * A keyless (fulcio) or pki leaf: the instant it must be valid at (for fulcio
 * the verified Rekor entry's integratedTime, which `setTime` returns in
 * seconds; for pki now), its chain to the anchors (the policy's, or a trusted
 * root's at that instant), then its identity. Returns the signer.
 */
export function verifyLeaf(
  c: SigstoreCheck,
  leaf: Certificate,
  untrustedIntermediates: readonly Certificate[],
  setTime: () => number,
  anchorsAt?: (ms: number) => { roots: readonly Certificate[]; intermediates: readonly Certificate[] },
): Signer {
  const r = c.requirement;
  let at: number;
  let identity: (c: SigstoreCheck, l: Certificate) => Signer;
  if (r.fulcio !== undefined) {
    at = setTime() * 1000; // the SET first: its time is when the certificate must have been valid
    identity = checkFulcioIdentity;
  } else if (r.pki !== undefined) {
    at = c.now;
    identity = checkPkiIdentity;
  } else {
    return reject('internal: a certificate for a sigstoreSigned requirement without fulcio or pki');
  }
  const anchors = anchorsAt?.(at) ?? { roots: c.material.roots ?? [], intermediates: c.material.intermediates };
  verifyChain(leaf, [...untrustedIntermediates, ...anchors.intermediates], anchors.roots, at);
  return identity(c, leaf);
}

/** The payload's digest and identity, after its signature verified. */
export function checkPayload(c: SigstoreCheck, payload: Uint8Array, signer: Signer): void {
  const p = parseCosignPayload(payload);
  const actual = digestOf(c.manifestBytes, algorithmOf(p.dockerManifestDigest));
  if (actual !== p.dockerManifestDigest) reject(`signed by ${signer} for manifest ${p.dockerManifestDigest}, but this image's manifest is ${actual}`);
  const mismatch = identityMismatch(c.requirement.signedIdentity, c.image, p.dockerReference);
  if (mismatch !== undefined) reject(`signed by ${signer}, but it ${mismatch} (signedIdentity)`);
}

/** Verifies one attachment; returns the signer or throws SigstoreRejected. */
export function verifyAttachment(c: SigstoreCheck, a: UntrustedCosignAttachment): Signer {
  const m = c.material;
  if (a.payload.length > MAX_COSIGN_PAYLOAD_BYTES) reject(`the payload is larger than ${MAX_COSIGN_PAYLOAD_BYTES} bytes`);
  if (a.signature.length > MAX_SIGNATURE_BYTES) reject(`the signature is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  const signature = decodeBase64(a.signature, 'the signature (dev.cosignproject.cosign/signature)');
  const set = (): ReturnType<typeof parseCosignSet> => {
    if (a.rekorBundle === undefined) return reject('the signature has no Rekor SET (dev.sigstore.cosign/bundle), which the policy\'s Rekor keys require');
    return parseCosignSet(a.rekorBundle);
  };

  if (m.keys !== undefined) {
    let candidates = m.keys;
    if (m.rekorKeys !== undefined) {
      const s = set();
      const reasons: string[] = [];
      candidates = m.keys.filter((k) => {
        try {
          verifySet(m.rekorKeys as PublicKey[], s.set, s.entry, { signature, keyOrCertDer: k.spki, payload: a.payload });
          return true;
        } catch (e) {
          reasons.push((e as Error).message);
          return false;
        }
      });
      if (candidates.length === 0) reject(`Rekor SET: ${[...new Set(reasons)].join('; ')}`);
    }
    const key = candidates.find((k) => verifySignature(k, a.payload, signature));
    if (key === undefined) reject(`the signature does not verify with the policy's ${m.keys.length === 1 ? 'key' : `${m.keys.length} keys`} (wrong key or tampered payload)`);
    const signer = keyName(key as PublicKey);
    checkPayload(c, a.payload, signer);
    return signer;
  }

  const { leaf, intermediates } = leafAndChain(a.certificate, a.chain);
  const signer = verifyLeaf(c, leaf, intermediates, () => {
    const s = set();
    return verifySet(m.rekorKeys ?? [], s.set, s.entry, { signature, keyOrCertDer: leaf.der, payload: a.payload }).integratedTime;
  });
  if (!verifySignature(leaf.publicKey, a.payload, signature)) reject(`the signature does not verify with the certificate of ${signer} (tampered payload or signature)`);
  checkPayload(c, a.payload, signer);
  return signer;
}
