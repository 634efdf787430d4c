/**
 * Policy scopes an image falls under, most specific first, as
 * containers-policy.json(5) and containers-registries.d(5) define them.
 * The first scope present in a configuration wins; more general ones are
 * ignored. Each transport says what its scopes are (the trust member of its Transport, transport/types.ts).
 */
import { transportOf } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';

export interface PolicyScopes {
  /** The policy.json transport name. */
  readonly transport: string;
  /** Most specific first; the transport default "" is not included. */
  readonly scopes: readonly string[];
}

/** The scopes of any reference. A short name has none: it must be resolved to a registry before the trust check. */
export function scopesFor(ref: ImageReference): PolicyScopes {
  const trust = transportOf(ref).trust;
  if (trust === undefined) throw new Error(`${ref.transport} reference ${transportOf(ref).format(ref)} must be resolved to a registry before its trust is checked`);
  return { transport: ref.transport, scopes: trust.scopes(ref) };
}
