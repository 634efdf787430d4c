/** oci:PATH[:REF]: an OCI image layout directory. */
import { invalidReference } from '../../image/reference.ts';
import { splitPathRef } from '../path-reference.ts';

export interface OciLayoutReference {
  readonly transport: 'oci';
  /** Absolute path of the layout directory. */
  readonly dir: string;
  /** The org.opencontainers.image.ref.name to select, or undefined for "the only image". */
  readonly ref: string | undefined;
}

const layoutRefRe = /^[A-Za-z0-9._\-:/@+]{1,255}$/;

/** A layout's REF (org.opencontainers.image.ref.name); "" means none. Shared with oci-archive:. */
export function parseLayoutRef(ref: string | undefined, input: string): string | undefined {
  if (ref !== undefined && ref !== '' && !layoutRefRe.test(ref)) throw invalidReference(input, `bad reference name "${ref}"`);
  return ref === '' ? undefined : ref;
}

export function parseOciReference(s: string, input: string): OciLayoutReference {
  const [dir, ref] = splitPathRef(s, input, 'layout directory');
  return { transport: 'oci', dir, ref: parseLayoutRef(ref, input) };
}

export function formatOciReference(ref: OciLayoutReference): string {
  return `oci:${ref.dir}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
}
