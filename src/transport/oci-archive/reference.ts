/** oci-archive:FILE[:REF]: a tar of an OCI image layout. */
import { parseLayoutRef } from '../oci/reference.ts';
import { splitPathRef } from '../path-reference.ts';

export interface OciArchiveReference {
  readonly transport: 'oci-archive';
  /** Absolute path of the (uncompressed) tar file. */
  readonly file: string;
  readonly ref: string | undefined;
}

export function parseOciArchiveReference(s: string, input: string): OciArchiveReference {
  const [file, ref] = splitPathRef(s, input, 'archive file');
  return { transport: 'oci-archive', file, ref: parseLayoutRef(ref, input) };
}

export function formatOciArchiveReference(ref: OciArchiveReference): string {
  return `oci-archive:${ref.file}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
}
