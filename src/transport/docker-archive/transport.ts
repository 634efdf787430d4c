/** The docker-archive: transport (a `docker save` tar). */
import { lastComponent } from '../../image/reference.ts';
import { fileBaseName } from '../path-reference.ts';
import type { Transport } from '../types.ts';
import { formatDockerArchiveReference, parseDockerArchiveReference, type DockerArchiveReference } from './reference.ts';

export const dockerArchiveTransport: Transport<DockerArchiveReference> = {
  name: 'docker-archive',
  syntax: { prefix: 'docker-archive:', parse: parseDockerArchiveReference },
  format: formatDockerArchiveReference,
  baseName: (ref) => (ref.tag !== undefined ? lastComponent(ref.tag.replace(/:[^:/]*$/, '')) : fileBaseName(ref.file)),
  pinnedDigest: () => undefined,
  trust: {
    scopes: () => [], // none: only the transport default ""
    validateScope: () => 'docker-archive supports no scope except the default ""',
    normalizeScope: (scope) => scope,
    identity: () => undefined,
  },
  async open(ref, _options, platform) {
    const { DockerArchiveImageSource } = await import('./docker_archive_src.ts');
    return DockerArchiveImageSource.open(ref, platform);
  },
};
