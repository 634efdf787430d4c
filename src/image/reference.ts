/**
 * Image references, as the user writes them on the command line:
 *   docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]   a registry (OCI distribution v2); no HOST means docker.io
 *   HOST[:PORT]/REPO[:TAG][@DIGEST]               the same, with an explicit registry host
 *   REPO[:TAG][@DIGEST]                           a short name, resolved through registries.conf
 *   oci:PATH[:REF]                                an OCI image layout directory
 *   oci-archive:FILE[:REF]                        a tar of an OCI image layout
 *   docker-archive:FILE[:NAME:TAG|:@N]            a `docker save` tar
 * The docker grammar follows distribution/reference: the first component is a
 * registry host only when it has a '.' or ':' or is "localhost".
 */
import path from 'node:path';
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

export interface OciLayoutReference {
  readonly transport: 'oci';
  /** Absolute path of the layout directory. */
  readonly dir: string;
  /** The org.opencontainers.image.ref.name to select, or undefined for "the only image". */
  readonly ref: string | undefined;
}

export interface OciArchiveReference {
  readonly transport: 'oci-archive';
  /** Absolute path of the (uncompressed) tar file. */
  readonly file: string;
  readonly ref: string | undefined;
}

export interface DockerArchiveReference {
  readonly transport: 'docker-archive';
  /** Absolute path of the (uncompressed) tar file. */
  readonly file: string;
  /** A RepoTags entry to select ("busybox:latest"), normalised as a docker reference. */
  readonly tag: string | undefined;
  /** `@N`: the N-th image of manifest.json. */
  readonly index: number | undefined;
}

export type ImageReference = DockerReference | ShortNameReference | OciLayoutReference | OciArchiveReference | DockerArchiveReference;

/** containers-transports(5) names that berth does not read; a clear error beats a confusing parse. */
const OTHER_TRANSPORTS = new Set(['dir', 'containers-storage', 'docker-daemon', 'ostree', 'sif']);

const componentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const hostRe = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const layoutRefRe = /^[A-Za-z0-9._\-:/@+]{1,255}$/;

function invalid(input: string, why: string): BerthError {
  return new BerthError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`, {
    hint: 'use docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], a short name such as REPO:TAG, oci:PATH[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]',
  });
}

export function parseImageReference(input: string): ImageReference {
  if (input.length === 0 || input.length > 4096 || /[\0\n\r]/.test(input)) throw invalid(input, 'empty, too long or has control characters');
  if (input.startsWith('docker://')) return parseDockerReference(input.slice('docker://'.length), input);
  if (input.startsWith('oci:')) return parseOciReference(input.slice('oci:'.length), input);
  if (input.startsWith('oci-archive:')) return parseOciArchiveReference(input.slice('oci-archive:'.length), input);
  if (input.startsWith('docker-archive:')) return parseDockerArchiveReference(input.slice('docker-archive:'.length), input);
  const transport = /^([a-z][a-z-]*):/.exec(input)?.[1];
  if (transport !== undefined && OTHER_TRANSPORTS.has(transport)) {
    throw invalid(input, `the ${transport}: transport is not supported`);
  }
  // Without docker://, a name without a registry host is a short name: which
  // registry it means is the host's policy (registries.conf), not a default.
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
      throw invalid(input, 'the part after @ is not a sha256 or sha512 digest');
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!tagRe.test(tag)) throw invalid(input, `bad tag "${tag}"`);
  }
  const parts = rest.split('/');
  let host: string | undefined;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!hostRe.test(first)) throw invalid(input, `bad registry host "${first}"`);
    host = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !componentRe.test(p))) {
    throw invalid(input, 'repository names are lowercase letters, digits and separators . _ __ -');
  }
  if (parts.join('/').length > 255) throw invalid(input, 'repository name longer than 255 characters');
  return { host, path: parts, tag, digest };
}

function dockerFromParts(parts: NameParts, input: string): DockerReference {
  const registry = parts.host ?? DEFAULT_REGISTRY;
  const path = [...parts.path];
  if (registry === DEFAULT_REGISTRY && path.length === 1) path.unshift('library');
  const repository = path.join('/');
  if (repository.length > 255) throw invalid(input, 'repository name longer than 255 characters');
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
  if (!hostRe.test(registry)) throw invalid(input, `bad registry host "${registry}"`);
  return dockerFromParts({ host: registry, path: ref.name.split('/'), tag: ref.tag, digest: ref.digest }, input);
}

function parseLayoutRef(ref: string | undefined, input: string): string | undefined {
  if (ref !== undefined && ref !== '' && !layoutRefRe.test(ref)) throw invalid(input, `bad reference name "${ref}"`);
  return ref === '' ? undefined : ref;
}

/** PATH[:REF]; PATH may not contain ':' (as in containers/image). */
function splitPathRef(s: string, input: string, what: string): [string, string | undefined] {
  const colon = s.indexOf(':');
  const file = colon >= 0 ? s.slice(0, colon) : s;
  const ref = colon >= 0 ? s.slice(colon + 1) : undefined;
  if (file.length === 0) throw invalid(input, `missing the ${what}`);
  return [path.resolve(file), ref];
}

function parseOciReference(s: string, input: string): OciLayoutReference {
  const [dir, ref] = splitPathRef(s, input, 'layout directory');
  return { transport: 'oci', dir, ref: parseLayoutRef(ref, input) };
}

function parseOciArchiveReference(s: string, input: string): OciArchiveReference {
  const [file, ref] = splitPathRef(s, input, 'archive file');
  return { transport: 'oci-archive', file, ref: parseLayoutRef(ref, input) };
}

function parseDockerArchiveReference(s: string, input: string): DockerArchiveReference {
  const [file, ref] = splitPathRef(s, input, 'archive file');
  if (ref === undefined || ref === '') return { transport: 'docker-archive', file, tag: undefined, index: undefined };
  if (ref.startsWith('@')) {
    if (!/^@(0|[1-9][0-9]{0,5})$/.test(ref)) throw invalid(input, `"${ref}" is not @N with N an image index`);
    return { transport: 'docker-archive', file, tag: undefined, index: Number(ref.slice(1)) };
  }
  const named = parseDockerReference(ref, input);
  if (named.digest !== undefined) throw invalid(input, 'a docker-archive image is selected by NAME:TAG or @N, not by digest');
  return { transport: 'docker-archive', file, tag: dockerName(named), index: undefined };
}

/** "registry/repository:tag" without the transport prefix (how RepoTags are compared). */
export function dockerName(ref: DockerReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The host the registry's API is served from (Docker Hub's differs from its name). */
export function registryApiHost(ref: DockerReference): string {
  return REGISTRY_API_HOST[ref.registry] ?? ref.registry;
}

/** Canonical string form, usable as input again. */
export function formatReference(ref: ImageReference): string {
  const suffix = (tag: string | undefined, digest: Digest | undefined) => `${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`;
  switch (ref.transport) {
    case 'oci':
      return `oci:${ref.dir}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
    case 'oci-archive':
      return `oci-archive:${ref.file}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
    case 'docker-archive':
      return `docker-archive:${ref.file}${ref.tag !== undefined ? `:${ref.tag}` : ref.index !== undefined ? `:@${ref.index}` : ''}`;
    case 'short-name':
      return `${ref.name}${suffix(ref.tag, ref.digest)}`;
    case 'docker':
      return `docker://${ref.registry}/${ref.repository}${suffix(ref.tag, ref.digest)}`;
  }
}

/** The last path component of the repository (or layout dir): the default container name. */
export function repositoryBaseName(ref: ImageReference): string {
  const last = (s: string) => s.slice(s.lastIndexOf('/') + 1);
  const fileBase = (f: string) => path.basename(f).replace(/\.(tar|oci|docker)$/i, '');
  // A layout's ref.name may be a plain tag ("web") or a whole reference
  // ("registry:5000/system/etcd:3.4", as berth save writes): name it by its repository.
  const refBase = (r: string) => last(r.replace(/@.*$/, '').replace(/:[^:/]*$/, ''));
  switch (ref.transport) {
    case 'oci':
      return ref.ref !== undefined ? refBase(ref.ref) : path.basename(ref.dir);
    case 'oci-archive':
      return ref.ref !== undefined ? refBase(ref.ref) : fileBase(ref.file);
    case 'docker-archive':
      return ref.tag !== undefined ? last(ref.tag.replace(/:[^:/]*$/, '')) : fileBase(ref.file);
    case 'short-name':
      return last(ref.name);
    case 'docker':
      return last(ref.repository);
  }
}
