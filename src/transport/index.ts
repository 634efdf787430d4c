/**
 * The transports: one table, one entry per transport folder. Adding a
 * transport is a folder exporting its Transport (types.ts), its reference
 * kind in reference.ts, and its entry here; the compiler asks for each.
 * Everything else about references (parse, format, default names, trust
 * scopes, opening a source) goes through this table.
 */
import type { Digest } from '../image/digest.ts';
import { parsePlatformOption } from '../image/manifest.ts';
import { invalidReference, parseRegistryName } from '../image/reference.ts';
import { dockerArchiveTransport } from './docker-archive/transport.ts';
import { dockerTransport, shortNameTransport } from './docker/transport.ts';
import { ociArchiveTransport } from './oci-archive/transport.ts';
import { ociTransport } from './oci/transport.ts';
import type { ImageReference } from './reference.ts';
import type { ImageSource, SourceOptions, Transport } from './types.ts';

type TransportTable = { readonly [K in ImageReference['transport']]: Transport<Extract<ImageReference, { transport: K }>> };

/** Every transport, by reference kind. */
export const TRANSPORTS: TransportTable = {
  docker: dockerTransport,
  'short-name': shortNameTransport,
  oci: ociTransport,
  'oci-archive': ociArchiveTransport,
  'docker-archive': dockerArchiveTransport,
};

/** The transport of `ref` (typed loosely: it takes any reference of its kind, which `ref` is). */
export function transportOf(ref: ImageReference): Transport<ImageReference> {
  return TRANSPORTS[ref.transport] as Transport<ImageReference>;
}

/** The transport a policy.json transport name means, if berth has it. */
export function transportNamed(name: string): Transport<ImageReference> | undefined {
  return Object.hasOwn(TRANSPORTS, name) ? (TRANSPORTS[name as ImageReference['transport']] as Transport<ImageReference>) : undefined;
}

/** containers-transports(5) names that berth does not read; a clear error beats a confusing parse. */
const OTHER_TRANSPORTS = new Set(['dir', 'containers-storage', 'docker-daemon', 'ostree', 'sif']);

/** An image reference as the user writes it: `PREFIX…` of a transport, else a registry name (docker or short name). */
export function parseImageReference(input: string): ImageReference {
  if (input.length === 0 || input.length > 4096 || /[\0\n\r]/.test(input)) throw invalidReference(input, 'empty, too long or has control characters');
  for (const t of Object.values(TRANSPORTS) as Transport<ImageReference>[]) {
    if (t.syntax !== undefined && input.startsWith(t.syntax.prefix)) return t.syntax.parse(input.slice(t.syntax.prefix.length), input);
  }
  const transport = /^([a-z][a-z-]*):/.exec(input)?.[1];
  if (transport !== undefined && OTHER_TRANSPORTS.has(transport)) {
    throw invalidReference(input, `the ${transport}: transport is not supported`);
  }
  return parseRegistryName(input);
}

/** Canonical string form, usable as input again. */
export function formatReference(ref: ImageReference): string {
  return transportOf(ref).format(ref);
}

/** The last path component of the repository (or layout dir, or archive file): the default container name. */
export function repositoryBaseName(ref: ImageReference): string {
  return transportOf(ref).baseName(ref);
}

/** The manifest digest `ref` pins, if any. */
export function pinnedDigest(ref: ImageReference): Digest | undefined {
  return transportOf(ref).pinnedDigest(ref);
}

export async function openImageSource(ref: ImageReference, options: SourceOptions = {}): Promise<ImageSource> {
  const platform = options.platform === undefined ? undefined : parsePlatformOption(options.platform);
  return transportOf(ref).open(ref, options, platform);
}
