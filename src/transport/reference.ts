/**
 * Every kind of image reference, one per transport (index.ts TRANSPORTS has
 * the transport of each: adding a kind here without a transport, or a
 * transport without its kind, does not compile).
 */
import type { DockerReference, ShortNameReference } from '../image/reference.ts';
import type { DockerArchiveReference } from './docker-archive/reference.ts';
import type { OciArchiveReference } from './oci-archive/reference.ts';
import type { OciLayoutReference } from './oci/reference.ts';

export type ImageReference = DockerReference | ShortNameReference | OciLayoutReference | OciArchiveReference | DockerArchiveReference;
