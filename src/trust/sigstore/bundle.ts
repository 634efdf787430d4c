/** Sigstore bundles (v0.3): not yet verified; refused, fail closed. */
import type { UntrustedSigstoreBundle } from '../../image/sigstore.ts';
import type { SigstoreCheck, Signer } from './attachment.ts';
import { reject } from './encoding.ts';
import type { ScopeExtras } from './side-file.ts';

export async function verifyBundle(_c: SigstoreCheck, b: UntrustedSigstoreBundle, _extras: ScopeExtras): Promise<Signer> {
  return reject(`bundles (${b.mediaType.slice(0, 100)}) are not verified by this version of berth`);
}
