/**
 * Docker image identities as signatures and policies name them: fully expanded
 * `HOST[:PORT]/REPO[:TAG][@DIGEST]` with distribution/reference normalization
 * (`busybox` is `docker.io/library/busybox`). Unlike an image reference on the
 * command line, an identity may name only a repository: nothing defaults to
 * `:latest`, because a signature for the repository must not turn into a
 * signature for one tag.
 */
import type { DockerReference } from '../image/reference.ts';
import { parseDockerReference } from '../image/reference.ts';

export interface DockerIdentity {
  /** HOST[:PORT]/REPO, e.g. "docker.io/library/busybox". */
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

/** Parses a docker reference as written in signatures and policies; throws Error with the reason. */
export function parseDockerIdentity(s: string): DockerIdentity {
  if (s.length === 0 || s.length > 4096 || /[\s\0]/.test(s) || s.startsWith('/') || s.includes('://')) {
    throw new Error(`${JSON.stringify(s.slice(0, 200))} is not a docker reference`);
  }
  const at = s.indexOf('@');
  const nameAndTag = at >= 0 ? s.slice(0, at) : s;
  const hasTag = nameAndTag.lastIndexOf(':') > nameAndTag.lastIndexOf('/');
  let ref: DockerReference;
  try {
    ref = parseDockerReference(s);
  } catch {
    throw new Error(`${JSON.stringify(s.slice(0, 200))} is not a valid docker reference`);
  }
  return { name: `${ref.registry}/${ref.repository}`, tag: hasTag ? ref.tag : undefined, digest: ref.digest };
}

export function formatIdentity(id: DockerIdentity): string {
  return `${id.name}${id.tag === undefined ? '' : `:${id.tag}`}${id.digest === undefined ? '' : `@${id.digest}`}`;
}

export function isNameOnly(id: DockerIdentity): boolean {
  return id.tag === undefined && id.digest === undefined;
}

/**
 * The identity a signature must claim for an image pulled as `ref`. A
 * reference with both a tag and a digest counts as the tag (the stricter
 * match): the digest pins the bytes and is checked against the manifest itself.
 */
export function imageIdentity(ref: DockerReference): DockerIdentity {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) return { name, tag: ref.tag, digest: undefined };
  return { name, tag: undefined, digest: ref.digest };
}

/**
 * Whether `ref` (a fully expanded identity string) lies under `prefix`: the
 * prefix is a host[:port], a namespace or a repository, and must end at a
 * component boundary ("example.com" does not cover "example.com.evil/x" nor
 * "example.com:5000/x").
 */
export function refMatchesPrefix(ref: string, prefix: string): boolean {
  if (ref === prefix) return true;
  if (!ref.startsWith(prefix)) return false;
  const next = ref[prefix.length];
  if (!prefix.includes('/')) return next === '/';
  return next === '/' || next === ':' || next === '@';
}

const hostRe = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const componentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * Validates a remapIdentity prefix: a fully expanded host[:port], namespace or
 * repository, without tag or digest (checked syntactically: a namespace such
 * as "docker.io/library" is not a reference of its own).
 */
export function validIdentityPrefix(prefix: string): boolean {
  const [host, ...path] = prefix.split('/');
  if (host === undefined || !hostRe.test(host)) return false;
  if (path.length > 0 && !(host.includes('.') || host.includes(':') || host === 'localhost')) return false;
  return path.every((c) => componentRe.test(c));
}
