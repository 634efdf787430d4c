/**
 * Images from a shared store (berth.conf `shared-store=PATH`, a read-only
 * mount of what `berth publish` writes; share/layout.ts): a host runs an
 * image the share holds and approves from the share's checkout, fetching no
 * blob and writing no object. The share is only a faster, shared copy: the
 * host's own trust policy decides, with the share's signatures, exactly as
 * for a registry (an unapproved image has no signature and is refused).
 *
 * When the share is missing, hung or does not have the image, berth falls
 * back to a normal pull or refuses (`shared-store-fallback=pull|refuse`),
 * saying so in one line that names the share and the reason.
 *
 * The wrapper (/usr/bin/berth) reads the keys from berth.conf into
 * $BERTH_SHARED_STORE and $BERTH_SHARED_STORE_FALLBACK.
 */
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { formatPlatform, hostPlatform } from '../image/manifest.ts';
import type { DockerReference } from '../image/reference.ts';
import { findSharedImage, type SharedImage } from '../share/reader.ts';
import type { StoredImage } from '../store/types.ts';
import { formatReference } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';
import { decodeSigstoreList } from '../store/images.ts';
import { checkTrust } from '../trust/index.ts';
import { keptSigstoreSource } from '../trust/sigstore-source.ts';
import { MAX_SIGNATURE_BYTES, MAX_SIGNATURES } from '../trust/limits.ts';
import type { OpContext } from './context.ts';
import type { PullOptions } from './pull.ts';

export const SHARED_STORE_ENV = 'BERTH_SHARED_STORE';
export const SHARED_STORE_FALLBACK_ENV = 'BERTH_SHARED_STORE_FALLBACK';

export type ShareFallback = 'pull' | 'refuse';

export interface ShareConfig {
  root: string;
  fallback: ShareFallback;
}

/**
 * The host's shared store from the environment, or undefined when none is
 * set. The fallback defaults to `pull`: the share is an accelerator, and a
 * host that cannot reach it must still be able to install and update from
 * the registry (whose images the same policy and signatures guard); fleets
 * that must never pull set `refuse`.
 */
export function shareConfig(env: NodeJS.ProcessEnv = process.env): ShareConfig | undefined {
  const root = env[SHARED_STORE_ENV]?.trim();
  if (root === undefined || root === '') return undefined;
  if (!path.isAbsolute(root)) {
    throw new BerthError('CONFIG_INVALID', `shared-store=${root} is not an absolute path`, { hint: `write shared-store=/ABSOLUTE/MOUNTPOINT in berth.conf (or ${SHARED_STORE_ENV})` });
  }
  const fallback = env[SHARED_STORE_FALLBACK_ENV]?.trim() || 'pull';
  if (fallback !== 'pull' && fallback !== 'refuse') {
    throw new BerthError('CONFIG_INVALID', `shared-store-fallback=${fallback.slice(0, 40)} is neither pull nor refuse`, { hint: `write shared-store-fallback=pull or shared-store-fallback=refuse in berth.conf (or ${SHARED_STORE_FALLBACK_ENV})` });
  }
  return { root: path.resolve(root), fallback };
}

/** An image to deploy from a share: what stage() needs, as a StoredImage, and where its rootfs is. */
export interface FromShare {
  image: StoredImage;
  shared: { share: string; rootfs: string };
}

function asStoredImage(s: SharedImage, signatures: Buffer[], sigstoreSignatures: UntrustedSigstoreSignature[]): StoredImage {
  return {
    manifestDigest: s.digest,
    manifestBytes: s.manifestBytes,
    configBytes: s.configBytes,
    manifest: s.manifest,
    config: s.config,
    signatures,
    sigstoreSignatures,
    references: [],
    created: s.entry.published,
    size: s.entry.size,
  };
}

/**
 * `ref` from the share when it holds it and the host's policy accepts it;
 * undefined (after a one-line warning) to fall back to a pull. Throws
 * UNTRUSTED when the policy refuses the share's image (no fallback: the
 * registry holds no other signatures to accept it with), and
 * SHARE_UNAVAILABLE when the share cannot serve and the fallback is refuse.
 */
export async function obtainFromShare(ctx: OpContext, config: ShareConfig, ref: DockerReference, options: PullOptions): Promise<FromShare | undefined> {
  const name = formatReference(ref);
  const found = await findSharedImage(config.root, { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }, { maxSignatures: MAX_SIGNATURES, maxSignatureBytes: MAX_SIGNATURE_BYTES });
  if (found.kind !== 'found') {
    const why = `shared store ${config.root} ${found.kind === 'absent' ? 'does not have' : 'is unavailable for'} ${name}: ${found.reason}`;
    if (config.fallback === 'refuse') {
      throw new BerthError(found.kind === 'absent' ? 'IMAGE_NOT_FOUND' : 'SHARE_UNAVAILABLE', why, {
        hint: found.kind === 'absent' ? 'wait for the publisher to approve it (berth publish status), or set shared-store-fallback=pull in berth.conf' : 'check the mount (findmnt), or set shared-store-fallback=pull in berth.conf',
      });
    }
    ctx.report.warn(`${why}; pulling from the registry instead`);
    return undefined;
  }
  const s = found.image;
  const want = options.platform ?? hostPlatform();
  if (s.config.os !== want.os || s.config.architecture !== want.architecture) {
    const why = `shared store ${config.root} holds ${name} for ${s.config.os}/${s.config.architecture}, not ${formatPlatform(want)}`;
    if (config.fallback === 'refuse') throw new BerthError('IMAGE_NOT_FOUND', why, { hint: 'publish the image for this platform, or set shared-store-fallback=pull in berth.conf' });
    ctx.report.warn(`${why}; pulling from the registry instead`);
    return undefined;
  }
  // The host's own policy, with the share's signatures, on the share's verified manifest bytes.
  let untrustedSigstore: UntrustedSigstoreSignature[] = [];
  if (s.untrustedSigstoreBytes !== undefined) {
    try {
      untrustedSigstore = decodeSigstoreList(s.untrustedSigstoreBytes, MAX_SIGNATURES);
    } catch (e) {
      // Damaged signatures make the share unusable for this image, as a damaged manifest does.
      const why = `shared store ${config.root} is unavailable for ${name}: the sigstore signatures of ${s.digest} are invalid: ${(e as Error).message}`;
      if (config.fallback === 'refuse') throw new BerthError('SHARE_UNAVAILABLE', why, { hint: 'ask the publisher to republish the image, or set shared-store-fallback=pull in berth.conf' });
      ctx.report.warn(`${why}; pulling from the registry instead`);
      return undefined;
    }
  }
  const verdict = await checkTrust(ref as ImageReference, s.manifestBytes, options.trust, s.untrustedSignatures, keptSigstoreSource(untrustedSigstore));
  ctx.report.step(`Using ${name} from shared store ${config.root} (${s.digest}): nothing to fetch`);
  return { image: asStoredImage(s, verdict.signatures, verdict.sigstoreSignatures), shared: { share: config.root, rootfs: s.rootfs } };
}
