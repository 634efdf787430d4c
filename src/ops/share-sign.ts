/**
 * The publisher's approval: a simple-signing signature (containers-signature(5),
 * as `berth sign` makes) by the publisher's key, in the share's look-aside
 * store SHARE/sigstore/REPO@ALG=HEX/signature-N. A host whose policy
 * requires that key (signedBy, with registries.d pointing the registry's
 * lookaside at the share's sigstore/) accepts only approved images, from the
 * registry or from the share alike.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PrivateKey } from 'openpgp';
import { syncDir } from '../durable.ts';
import type { Digest } from '../image/digest.ts';
import type { DockerReference } from '../image/reference.ts';
import type { ShareLayout } from '../share/layout.ts';
import { writeSignature } from '../trust/lookaside.ts';
import { signManifestDigest } from './sign.ts';

export interface ApprovalKey {
  key: PrivateKey;
  /** the primary key's fingerprint, upper case */
  fingerprint: string;
}

/** Sign `digest` of `ref` as `identity` into the share's sigstore/; returns the file written. */
export async function signApproval(layout: ShareLayout, ref: DockerReference, digest: Digest, identity: string, key: ApprovalKey): Promise<string> {
  const signature = await signManifestDigest(digest, identity, key.key);
  const file = await writeSignature(pathToFileURL(layout.lookaside).href, ref, digest, signature);
  // writeSignature links the complete file into place; make the name durable before the decision says "signed".
  await syncDir(path.dirname(file));
  await syncDir(path.dirname(path.dirname(file)));
  return file;
}
