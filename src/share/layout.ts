/**
 * The shared store: the on-disk contract between the one writer (the
 * publisher, `berth publish`, with the share mounted read-write) and the many
 * readers (hosts with `shared-store=PATH` in berth.conf, mounted read-only).
 * Any POSIX filesystem with hard links and atomic rename works (GlusterFS,
 * NFS, CephFS); nothing here is specific to one of them.
 *
 *   SHARE/berth-share.json             {"format":"berth-share","version":1}; written first, never changed
 *   SHARE/store/                        a berth store (src/store/) of the publisher: objects/, layers/, images/
 *   SHARE/images/ALG-HEX/               one published image, by manifest digest; COMPLETE once it exists:
 *       rootfs/                           the read-only, hard-linked checkout (objects of SHARE/store/)
 *       manifest.json, config.json        the image's bytes as pulled (digest-verified by the publisher)
 *       image.json                        ImageEntry below
 *       sbom.cdx.json, scan.json          the scan's SBOM (CycloneDX) and report (src/scan/types.ts)
 *       sigstore.json                     the image's sigstore signatures as pulled (store/images.ts
 *                                         encodeSigstoreList), if any; untrusted, re-checked by hosts
 *   SHARE/refs/REGISTRY/REPO/TAG        a small text file "ALG:HEX\n": the newest APPROVED digest of that tag
 *   SHARE/sigstore/                     a look-aside store (containers-registries.d(5) layout,
 *                                         REPO@ALG=HEX/signature-N): the publisher's approval signatures
 *   SHARE/decisions/ALG-HEX.json        Decision below: what the publisher decided and why (informational;
 *                                         hosts trust only signatures, checked under their own policy)
 *   SHARE/retired/ALG-HEX.json          Retirement below: the image left the publisher's retention (the last
 *                                         N approved digests of its repository) and is removed after `removeAfter`;
 *                                         a host still running it should warn (berth status) and update
 *   SHARE/.staging/                     the publisher's work in progress; readers never look inside
 *   SHARE/lock, SHARE/intents/          the publisher's lock and write-ahead intents (it uses the share as
 *                                         its berth root); readers never look inside
 *
 * Rules that make every reader see either the previous or the new state,
 * also when the writer is killed at any point (OSTree's order):
 *   1. objects, then the checkout and files of an image are written under
 *      .staging/, fsynced, and renamed to images/ALG-HEX/ in one rename;
 *   2. signatures and the decision after the image exists;
 *   3. the ref last (temp file + fsync + rename).
 * Readers never write, lock or create anything on the share.
 */
import path from 'node:path';
import type { Digest } from '../image/digest.ts';

export const SHARE_FORMAT = 'berth-share';
export const SHARE_VERSION = 1;

export interface ShareMarker {
  format: typeof SHARE_FORMAT;
  version: number;
}

/** SHARE/images/ALG-HEX/image.json */
export interface ImageEntry {
  /** the canonical reference it was published from, e.g. "registry.example:5000/etcd:3.5" */
  reference: string;
  digest: Digest;
  /** ISO 8601 */
  published: string;
  /** bytes under rootfs/ (sum of regular files' sizes, counted once per object) */
  size: number;
}

export type DecisionState = 'approved' | 'blocked' | 'pending';

/** SHARE/decisions/ALG-HEX.json */
export interface Decision {
  digest: Digest;
  reference: string;
  state: DecisionState;
  /** 'scan' (the publisher's policy) or 'operator' (berth publish approve|block) */
  by: 'scan' | 'operator';
  /** one line each: why it was approved or blocked (advisory IDs, hook verdicts) */
  reasons: string[];
  /** ISO 8601 */
  decided: string;
  /** approved: the identities (HOST/REPO:TAG) the publisher's signatures in sigstore/ vouch for */
  signed?: string[];
}

/** SHARE/retired/ALG-HEX.json */
export interface Retirement {
  digest: Digest;
  reference: string;
  /** ISO 8601: when it left the retention */
  retired: string;
  /** ISO 8601: from then on the publisher may remove it (images/, sigstore/, decisions/) */
  removeAfter: string;
}

function digestDir(digest: Digest): string {
  return digest.replace(':', '-');
}

/** Paths inside a share; pure. */
export class ShareLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }
  get marker(): string {
    return path.join(this.root, 'berth-share.json');
  }
  /** the root a Store is opened on (Store puts its own files under ROOT/store/) */
  get storeRoot(): string {
    return this.root;
  }
  get images(): string {
    return path.join(this.root, 'images');
  }
  image(digest: Digest): string {
    return path.join(this.images, digestDir(digest));
  }
  rootfs(digest: Digest): string {
    return path.join(this.image(digest), 'rootfs');
  }
  get refs(): string {
    return path.join(this.root, 'refs');
  }
  /** registryRepo: "REGISTRY/REPO" as in a canonical reference (no tag, no digest) */
  ref(registryRepo: string, tag: string): string {
    return path.join(this.refs, registryRepo, tag);
  }
  get lookaside(): string {
    return path.join(this.root, 'sigstore');
  }
  decision(digest: Digest): string {
    return path.join(this.root, 'decisions', `${digestDir(digest)}.json`);
  }
  retired(digest: Digest): string {
    return path.join(this.root, 'retired', `${digestDir(digest)}.json`);
  }
  get staging(): string {
    return path.join(this.root, '.staging');
  }
}
