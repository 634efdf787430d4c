/** docker-archive:FILE[:NAME:TAG|:@N]: a `docker save` tar. */
import { dockerName, invalidReference, parseDockerReference } from '../../image/reference.ts';
import { splitPathRef } from '../path-reference.ts';

export interface DockerArchiveReference {
  readonly transport: 'docker-archive';
  /** Absolute path of the (uncompressed) tar file. */
  readonly file: string;
  /** A RepoTags entry to select ("busybox:latest"), normalised as a docker reference. */
  readonly tag: string | undefined;
  /** `@N`: the N-th image of manifest.json. */
  readonly index: number | undefined;
}

export function parseDockerArchiveReference(s: string, input: string): DockerArchiveReference {
  const [file, ref] = splitPathRef(s, input, 'archive file');
  if (ref === undefined || ref === '') return { transport: 'docker-archive', file, tag: undefined, index: undefined };
  if (ref.startsWith('@')) {
    if (!/^@(0|[1-9][0-9]{0,5})$/.test(ref)) throw invalidReference(input, `"${ref}" is not @N with N an image index`);
    return { transport: 'docker-archive', file, tag: undefined, index: Number(ref.slice(1)) };
  }
  const named = parseDockerReference(ref, input);
  if (named.digest !== undefined) throw invalidReference(input, 'a docker-archive image is selected by NAME:TAG or @N, not by digest');
  return { transport: 'docker-archive', file, tag: dockerName(named), index: undefined };
}

export function formatDockerArchiveReference(ref: DockerArchiveReference): string {
  return `docker-archive:${ref.file}${ref.tag !== undefined ? `:${ref.tag}` : ref.index !== undefined ? `:@${ref.index}` : ''}`;
}
