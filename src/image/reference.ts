/**
 * Image references, as the user writes them on the command line:
 *   docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]   a registry (OCI distribution v2)
 *   oci:PATH[:REF]                                an OCI image layout directory
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

export interface OciLayoutReference {
  readonly transport: 'oci';
  /** Absolute path of the layout directory. */
  readonly dir: string;
  /** The org.opencontainers.image.ref.name to select, or undefined for "the only image". */
  readonly ref: string | undefined;
}

export type ImageReference = DockerReference | OciLayoutReference;

/** containers-transports(5) names that berth does not read; a clear error beats a confusing parse. */
const OTHER_TRANSPORTS = new Set(['oci-archive', 'docker-archive', 'dir', 'containers-storage', 'docker-daemon', 'ostree', 'sif']);

const componentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const hostRe = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

function invalid(input: string, why: string): BerthError {
  return new BerthError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`, {
    hint: 'use docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST] or oci:PATH[:TAG]',
  });
}

export function parseImageReference(input: string): ImageReference {
  if (input.length === 0 || input.length > 4096 || /[\0\n\r]/.test(input)) throw invalid(input, 'empty, too long or has control characters');
  if (input.startsWith('docker://')) return parseDockerReference(input.slice('docker://'.length), input);
  if (input.startsWith('oci:')) return parseOciReference(input.slice('oci:'.length), input);
  const transport = /^([a-z][a-z-]*):/.exec(input)?.[1];
  if (transport !== undefined && OTHER_TRANSPORTS.has(transport)) {
    throw invalid(input, `the ${transport}: transport is not supported`);
  }
  // A bare name is a registry reference, as with podman and skopeo's docker transport.
  return parseDockerReference(input, input);
}

export function parseDockerReference(s: string, input = s): DockerReference {
  if (s.startsWith('//')) s = s.slice(2);
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
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!hostRe.test(first)) throw invalid(input, `bad registry host "${first}"`);
    registry = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !componentRe.test(p))) {
    throw invalid(input, 'repository names are lowercase letters, digits and separators . _ __ -');
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw invalid(input, 'repository name longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { transport: 'docker', registry, repository, tag, digest };
}

function parseOciReference(s: string, input: string): OciLayoutReference {
  // oci:PATH[:REF]; PATH may not contain ':' (as in containers/image).
  const colon = s.indexOf(':');
  const dir = colon >= 0 ? s.slice(0, colon) : s;
  const ref = colon >= 0 ? s.slice(colon + 1) : undefined;
  if (dir.length === 0) throw invalid(input, 'missing the layout directory');
  if (ref !== undefined && !/^[A-Za-z0-9._\-:/@+]{1,255}$/.test(ref)) throw invalid(input, `bad reference name "${ref}"`);
  return { transport: 'oci', dir: path.resolve(dir), ref: ref === '' ? undefined : ref };
}

/** The host the registry's API is served from (Docker Hub's differs from its name). */
export function registryApiHost(ref: DockerReference): string {
  return REGISTRY_API_HOST[ref.registry] ?? ref.registry;
}

/** Canonical string form, usable as input again. */
export function formatReference(ref: ImageReference): string {
  if (ref.transport === 'oci') return `oci:${ref.dir}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
  return `docker://${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The last path component of the repository (or layout dir): the default container name. */
export function repositoryBaseName(ref: ImageReference): string {
  if (ref.transport === 'oci') {
    const base = ref.ref?.split(/[/:@]/).filter(Boolean)[0];
    return base ?? path.basename(ref.dir);
  }
  return ref.repository.slice(ref.repository.lastIndexOf('/') + 1);
}
