/** Bounds on what berth reads from signature stores (as containers/image). */

/** A signature larger than this is not read, let alone parsed. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
/** At most this many signatures are read per image. */
export const MAX_SIGNATURES = 32;
