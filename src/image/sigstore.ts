/**
 * Sigstore signatures as a registry holds them: the vocabulary shared by
 * transports (which find and fetch them), the store and bundles (which keep
 * them with the image) and trust (which verifies them). Everything here is
 * UNTRUSTED: bytes as received, parsed strictly only by trust/.
 */

/** cosign's layout: one layer of the `sha256-HEX.sig` tag's OCI manifest. */
export interface UntrustedCosignAttachment {
  kind: 'cosign';
  /** the layer blob (media type application/vnd.dev.cosign.simplesigning.v1+json), digest-verified against the manifest */
  payload: Buffer;
  /** annotation dev.cosignproject.cosign/signature (base64) */
  signature: string;
  /** annotation dev.sigstore.cosign/certificate (PEM), keyless only */
  certificate?: string;
  /** annotation dev.sigstore.cosign/chain (PEM) */
  chain?: string;
  /** annotation dev.sigstore.cosign/bundle (JSON with SignedEntryTimestamp and Payload): the Rekor SET */
  rekorBundle?: string;
}

/** A Sigstore bundle (application/vnd.dev.sigstore.bundle.v0.3+json), found through referrers or the tag fallback. */
export interface UntrustedSigstoreBundle {
  kind: 'bundle';
  mediaType: string;
  bytes: Buffer;
}

export type UntrustedSigstoreSignature = UntrustedCosignAttachment | UntrustedSigstoreBundle;

export const COSIGN_SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';

/** cosign's attachment tag for a manifest digest: sha256:HEX -> sha256-HEX.sig */
export function cosignSignatureTag(manifestDigest: string): string {
  return `${manifestDigest.replace(':', '-')}.sig`;
}

/**
 * Where trust gets an image's sigstore signatures, when (and only when) a
 * sigstoreSigned requirement needs them: a registry's attachments and
 * referrers, the store's copy, a bundle's. Whatever it returns is untrusted.
 */
export type SigstoreSignatureSource = (manifestDigest: string) => Promise<UntrustedSigstoreSignature[]>;
