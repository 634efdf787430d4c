/**
 * What the publisher asks the registry between publishes: a repository's
 * tags, and the digest a tag names now, compared with what the share has.
 * Nothing here is trusted or written: a tag whose digest is new is handed to
 * share-publish.ts, which resolves, verifies and decides for itself.
 */
import fs from 'node:fs/promises';
import { ifExists } from '../fsutil.ts';
import { digestOf, isDigest, type Digest } from '../image/digest.ts';
import { parseDockerReference } from '../image/reference.ts';
import { readDecision } from '../share/decision.ts';
import { ShareLayout } from '../share/layout.ts';
import { DockerImageSource } from '../transport/docker/docker_image_src.ts';
import type { SourceOptions } from '../transport/types.ts';

/** The tags of HOST/REPO on its registry. */
export async function registryTags(repository: string, source: SourceOptions): Promise<string[]> {
  const src = await DockerImageSource.open(parseDockerReference(repository), source);
  try {
    return await src.listTags();
  } finally {
    await src.close();
  }
}

/** The digest of the manifest HOST/REPO:TAG names now (the top-level bytes; unverified, for comparing only). */
export async function tagDigest(repository: string, tag: string, source: SourceOptions): Promise<Digest> {
  const src = await DockerImageSource.open(parseDockerReference(`${repository}:${tag}`), source);
  try {
    return digestOf((await src.getManifest()).untrustedBytes);
  } finally {
    await src.close();
  }
}

/**
 * Whether HOST/REPO:TAG at `digest` is new to the share: not when its ref
 * names that digest already, nor when the digest was blocked (the operator
 * or the scan decided; a new push of the tag is a new digest).
 */
export async function isNewToShare(share: string, repository: string, tag: string, digest: Digest): Promise<boolean> {
  const layout = new ShareLayout(share);
  const current = (await ifExists(fs.readFile(layout.ref(repository, tag), 'utf8')))?.trim();
  if (current !== undefined && isDigest(current) && current === digest) return false;
  const decision = await readDecision(layout.decision(digest));
  return decision?.state !== 'blocked';
}
