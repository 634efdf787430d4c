/**
 * The publisher's settings turned into what ops/share-publish.ts needs: the
 * share, the pull options (its own trust policy), the scan and the signing
 * key (read once). `berth publish add` and the service both go through here.
 */
import { BerthError } from '../errors.ts';
import type { OpContext } from '../ops/context.ts';
import type { ApprovalKey } from '../ops/share-sign.ts';
import type { RetentionResult } from '../ops/share-decide.ts';
import type { PublishOptions, PublishResult } from '../ops/share-publish.ts';
import type { PublisherConfig } from './config.ts';

export interface Publisher {
  share: string;
  options: PublishOptions;
  /** Publish `image`, then one retention pass (keep=, grace=). */
  publish(image: string): Promise<PublishResult & { retention: RetentionResult }>;
}

export async function loadApprovalKey(config: PublisherConfig): Promise<ApprovalKey | undefined> {
  if (config.key === undefined) return undefined;
  const { loadSigningKey } = await import('../ops/sign.ts');
  const key = await loadSigningKey(config.key, config.passphraseFile);
  return { key, fingerprint: key.getFingerprint().toUpperCase() };
}

/** A publisher for `config` (its share set); `insecurePolicy` only for tests and first setups, loudly. */
export async function makePublisher(ctx: OpContext, config: PublisherConfig, extra: { insecurePolicy?: boolean } = {}): Promise<Publisher> {
  const share = config.share;
  if (share === undefined) throw new BerthError('USAGE', 'no share is configured', { hint: 'set share=DIR in the publisher configuration, or give --share DIR' });
  const key = await loadApprovalKey(config);
  if (key === undefined) ctx.report.warn('no signing key is configured (key=): approved images get no approval signature, and hosts requiring one will refuse them');
  const options: PublishOptions = {
    source: {
      ...(config.tlsVerify === undefined ? {} : { tlsVerify: config.tlsVerify }),
      ...(config.certDir === undefined ? {} : { certDir: config.certDir }),
    },
    trust: {
      ...(config.policy === undefined ? {} : { policyPath: config.policy }),
      ...(config.registriesDir === undefined ? {} : { registriesDir: config.registriesDir }),
      ...(extra.insecurePolicy === true ? { insecurePolicy: true } : {}),
    },
    scan: config.scan,
    ...(key === undefined ? {} : { key }),
  };
  const { publishImage } = await import('../ops/share-publish.ts');
  const { retention } = await import('../ops/share-decide.ts');
  return {
    share,
    options,
    publish: async (image) => {
      const r = await publishImage(ctx, share, image, options);
      const kept = await retention(ctx, share, config.keep, config.grace);
      return { ...r, retention: kept };
    },
  };
}
