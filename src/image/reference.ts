/**
 * Registry image names (the docker grammar, shared by every part that names
 * registry images: transports, registries.conf, trust identities):
 *   docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]   a registry (OCI distribution v2); no HOST means docker.io
 *   HOST[:PORT]/REPO[:TAG][@DIGEST]               the same, with an explicit registry host
 *   REPO[:TAG][@DIGEST]                           a short name, resolved through registries.conf
 * The grammar follows distribution/reference: the first component is a
 * registry host only when it has a '.' or ':' or is "localhost".
 * References of every transport (oci:, oci-archive:, docker-archive:, …) and
 * their parsing and formatting are the transports' (transport/index.ts).
 */
import { BerthError } from '../errors.ts';
import { parseDigest, type Digest } from './digest.ts';

export const DEFAULT_REGISTRY = 'docker.io';
const REGISTRY_API_HOST: Record<string, string> = { 'docker.io': 'registry-1.docker.io' };

export interface DockerReference {
  readonly transport: 'docker';
  /** Registry as named (docker.io for Docker Hub). */
  readonly registry: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
}

/**
 * A registry reference without a registry host ("busybox", "foo/bar:1"): it
 * names an image only once registries.conf (aliases, then
 * unqualified-search-registries) turns it into DockerReference candidates.
 */
export interface ShortNameReference {
  readonly transport: 'short-name';
  /** The repository path as written, e.g. "busybox" or "foo/bar". */
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
}

const componentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const hostRe = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

/** The INVALID_REFERENCE error for `input`, for every transport's parser. */
export function invalidReference(input: string, why: string): BerthError {
  return new BerthError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`, {
    hint: 'use docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], a short name such as REPO:TAG, oci:PATH[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]',
  });
}

/**
 * A reference without a transport prefix: a registry name, docker if it
 * names a registry host, else a short name. Without docker://, which
 * registry a name without a host means is the host's policy
 * (registries.conf), not a default.
 */
export function parseRegistryName(input: string): DockerReference | ShortNameReference {
  const parts = splitName(input, input);
  if (parts.host === undefined) {
    return { transport: 'short-name', name: parts.path.join('/'), tag: parts.tag ?? (parts.digest === undefined ? 'latest' : undefined), digest: parts.digest };
  }
  return dockerFromParts(parts, input);
}

interface NameParts {
  host: string | undefined;
  path: string[];
  tag: string | undefined;
  digest: Digest | undefined;
}

function splitName(s: string, input: string): NameParts {
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch {
      throw invalidReference(input, 'the part after @ is not a sha256 or sha512 digest');
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!tagRe.test(tag)) throw invalidReference(input, `bad tag "${tag}"`);
  }
  const parts = rest.split('/');
  let host: string | undefined;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!hostRe.test(first)) throw invalidReference(input, `bad registry host "${first}"`);
    host = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !componentRe.test(p))) {
    throw invalidReference(input, 'repository names are lowercase letters, digits and separators . _ __ -');
  }
  if (parts.join('/').length > 255) throw invalidReference(input, 'repository name longer than 255 characters');
  return { host, path: parts, tag, digest };
}

function dockerFromParts(parts: NameParts, input: string): DockerReference {
  const registry = parts.host ?? DEFAULT_REGISTRY;
  const path = [...parts.path];
  if (registry === DEFAULT_REGISTRY && path.length === 1) path.unshift('library');
  const repository = path.join('/');
  if (repository.length > 255) throw invalidReference(input, 'repository name longer than 255 characters');
  const tag = parts.tag === undefined && parts.digest === undefined ? 'latest' : parts.tag;
  return { transport: 'docker', registry, repository, tag, digest: parts.digest };
}

/** docker:// semantics: a name without a registry host is on docker.io. */
export function parseDockerReference(s: string, input = s): DockerReference {
  if (s.startsWith('//')) s = s.slice(2);
  return dockerFromParts(splitName(s, input), input);
}

/** A short name qualified with `registry` (as a search registry does it). */
export function qualifyShortName(ref: ShortNameReference, registry: string): DockerReference {
  const input = `${registry}/${ref.name}`;
  if (!hostRe.test(registry)) throw invalidReference(input, `bad registry host "${registry}"`);
  return dockerFromParts({ host: registry, path: ref.name.split('/'), tag: ref.tag, digest: ref.digest }, input);
}

/** "registry/repository:tag" without the transport prefix (how RepoTags are compared). */
export function dockerName(ref: DockerReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The host the registry's API is served from (Docker Hub's differs from its name). */
export function registryApiHost(ref: DockerReference): string {
  return REGISTRY_API_HOST[ref.registry] ?? ref.registry;
}

const suffix = (tag: string | undefined, digest: Digest | undefined) => `${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`;

/** docker://HOST/REPO[:TAG][@DIGEST], usable as input again. */
export function formatDockerReference(ref: DockerReference): string {
  return `docker://${ref.registry}/${ref.repository}${suffix(ref.tag, ref.digest)}`;
}

/** A short name as written (REPO[:TAG][@DIGEST]). */
export function formatShortName(ref: ShortNameReference): string {
  return `${ref.name}${suffix(ref.tag, ref.digest)}`;
}

/** The last component of a repository path: the default container name. */
export function lastComponent(s: string): string {
  return s.slice(s.lastIndexOf('/') + 1);
}
