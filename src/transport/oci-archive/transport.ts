/** The oci-archive: transport (a tar of an OCI image layout). */
import path from 'node:path';
import { fileBaseName, layoutRefBaseName, resolvedPath, validatePathScope, withParents } from '../path-reference.ts';
import type { Transport } from '../types.ts';
import { formatOciArchiveReference, parseOciArchiveReference, type OciArchiveReference } from './reference.ts';

export const ociArchiveTransport: Transport<OciArchiveReference> = {
  name: 'oci-archive',
  syntax: { prefix: 'oci-archive:', parse: parseOciArchiveReference },
  format: formatOciArchiveReference,
  baseName: (ref) => (ref.ref !== undefined ? layoutRefBaseName(ref.ref) : fileBaseName(ref.file)),
  pinnedDigest: () => undefined,
  trust: {
    // The FILE and its parents.
    scopes: (ref) => withParents(resolvedPath(ref.file)),
    validateScope: (scope) => validatePathScope('oci-archive', scope),
    normalizeScope: (scope) => path.resolve(scope),
    identity: () => undefined,
  },
  async open(ref, _options, platform) {
    const { OciArchiveImageSource } = await import('./oci_archive_src.ts');
    return OciArchiveImageSource.open(ref, platform);
  },
};
