/** The oci: transport (an OCI image layout directory). */
import path from 'node:path';
import { layoutRefBaseName, resolvedPath, validatePathScope, withParents } from '../path-reference.ts';
import type { Transport } from '../types.ts';
import { formatOciReference, parseOciReference, type OciLayoutReference } from './reference.ts';

export const ociTransport: Transport<OciLayoutReference> = {
  name: 'oci',
  syntax: { prefix: 'oci:', parse: parseOciReference },
  format: formatOciReference,
  baseName: (ref) => (ref.ref !== undefined ? layoutRefBaseName(ref.ref) : path.basename(ref.dir)),
  pinnedDigest: () => undefined,
  trust: {
    // `DIR:REF` (REF empty when the reference names none), DIR, its parents.
    scopes: (ref) => {
      const dir = resolvedPath(ref.dir);
      return [`${dir}:${ref.ref ?? ''}`, ...withParents(dir)];
    },
    validateScope: (scope) => validatePathScope('oci', scope),
    normalizeScope: (scope) => path.resolve(scope),
    identity: () => undefined,
  },
  async open(ref, _options, platform) {
    const { OciImageSource } = await import('./oci_image_src.ts');
    return new OciImageSource(ref, platform);
  },
};
