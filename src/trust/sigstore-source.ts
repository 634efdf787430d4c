/**
 * The sigstore signature sources checkTrust is given (image/sigstore.ts
 * SigstoreSignatureSource): lazy, so that a policy without a sigstoreSigned
 * requirement costs nothing, not even reading registries.d.
 */
import { parseDigest } from '../image/digest.ts';
import type { SigstoreSignatureSource, UntrustedSigstoreSignature } from '../image/sigstore.ts';
import type { ImageReference } from '../transport/reference.ts';
import type { ImageSource } from '../transport/types.ts';
import type { TrustOptions } from './options.ts';

/**
 * The registry's signatures of the image `source` reads, when registries.d
 * says use-sigstore-attachments for `ref` (containers-registries.d(5); off
 * by default, as in containers/image); none otherwise, and none from media
 * that hold no sigstore signatures (layouts, archives).
 */
export function registrySigstoreSource(ref: ImageReference, source: ImageSource, options: TrustOptions): SigstoreSignatureSource {
  return async (manifestDigest) => {
    if (ref.transport !== 'docker' || source.getSigstoreSignatures === undefined) return [];
    const { loadRegistriesConfig, useSigstoreAttachments } = await import('./registries-d.ts');
    const config = await loadRegistriesConfig(options.registriesDir);
    if (!useSigstoreAttachments(config, ref)) return [];
    return source.getSigstoreSignatures(parseDigest(manifestDigest, 'manifest digest'));
  };
}

/** Signatures kept with the image (the store, a bundle): the same list whatever digest is asked; trust binds them to the digest. */
export function keptSigstoreSource(signatures: readonly UntrustedSigstoreSignature[]): SigstoreSignatureSource {
  return async () => [...signatures];
}
