/**
 * Short names ("busybox", "foo/bar:1"): registries.conf turns them into
 * candidates (an alias, else each unqualified-search-registry in order); the
 * first candidate whose registry has the image wins. Registries that are
 * down, deny access or lack the image are skipped, and reported when no
 * candidate is left.
 */
import { BerthError, isBerthError } from '../../errors.ts';
import type { Platform } from '../../image/manifest.ts';
import { formatDockerReference, formatShortName, type ShortNameReference } from '../../image/reference.ts';
import { loadRegistriesConf, shortNameCandidates } from '../../image/registries-conf.ts';
import type { SourceOptions } from '../types.ts';
import { CredentialStore } from './auth_file.ts';
import { DockerImageSource } from './docker_image_src.ts';

const SKIPPABLE = new Set(['IMAGE_NOT_FOUND', 'REGISTRY_UNREACHABLE', 'REGISTRY_ERROR', 'REGISTRY_BLOCKED']);

export async function openShortName(ref: ShortNameReference, options: SourceOptions, platform: Platform | undefined): Promise<DockerImageSource> {
  const conf = await loadRegistriesConf(options.registriesConf);
  const candidates = shortNameCandidates(ref, conf);
  const credentials = new CredentialStore({ ...(options.creds === undefined ? {} : { creds: options.creds }), ...(options.authFile === undefined ? {} : { authFile: options.authFile }) });
  const tried: string[] = [];
  for (const candidate of candidates) {
    let source: DockerImageSource | undefined;
    try {
      source = await DockerImageSource.open(candidate, options, { conf, credentials, ...(platform ? { platform } : {}) });
      await source.getManifest(); // cached: the caller's first getManifest() costs nothing
      return source;
    } catch (e) {
      await source?.close();
      if (!(isBerthError(e) && SKIPPABLE.has(e.code))) throw e;
      tried.push(`${formatDockerReference(candidate)}: ${e.message}`);
    }
  }
  throw new BerthError('IMAGE_NOT_FOUND', `short name ${formatShortName(ref)} not found in any search registry (tried ${candidates.map((c) => c.registry).join(', ')})`, {
    hint: 'check the name, or write the registry explicitly (docker://HOST/REPO:TAG)',
    details: tried,
  });
}
