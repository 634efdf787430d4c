/**
 * The docker transport (a registry, OCI distribution v2) and short names
 * (registry names without a host, resolved through registries.conf to docker
 * references before anything else happens to them).
 */
import {
  formatDockerReference, formatShortName, lastComponent, parseDockerReference,
  type DockerReference, type ShortNameReference,
} from '../../image/reference.ts';
import type { Transport } from '../types.ts';
import { dockerScopes, validateDockerScope } from './scopes.ts';

export const dockerTransport: Transport<DockerReference> = {
  name: 'docker',
  syntax: { prefix: 'docker://', parse: parseDockerReference },
  format: formatDockerReference,
  baseName: (ref) => lastComponent(ref.repository),
  pinnedDigest: (ref) => ref.digest,
  trust: {
    scopes: dockerScopes,
    validateScope: validateDockerScope,
    // `docker://HOST/NS` as well as `docker:HOST/NS`; no trailing slash.
    normalizeScope: (scope) => scope.replace(/^\/\//, '').replace(/\/+$/, ''),
    identity: (ref) => ref,
  },
  async open(ref, options, platform) {
    const { DockerImageSource } = await import('./docker_image_src.ts');
    return DockerImageSource.open(ref, options, platform ? { platform } : {});
  },
};

/** No prefix: image/reference.ts parseRegistryName makes these from names without a registry host. */
export const shortNameTransport: Transport<ShortNameReference> = {
  name: 'short-name',
  syntax: undefined,
  format: formatShortName,
  baseName: (ref) => lastComponent(ref.name),
  // Only once resolved: the candidate's docker reference pins it.
  pinnedDigest: () => undefined,
  trust: undefined,
  async open(ref, options, platform) {
    const { openShortName } = await import('./short_name.ts');
    return openShortName(ref, options, platform);
  },
};
