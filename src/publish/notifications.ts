/**
 * docker-distribution's notifications (docs: "notifications.endpoints"): the
 * registry POSTs an envelope of events to the publisher's endpoint. Parsed
 * strictly and untrusted: only push events of manifests are kept, and they
 * only say "look at REPO (:TAG) again"; the publisher resolves and verifies
 * from the registry itself. Pure.
 */
import { isJsonObject, parseStrictJson, type JsonValue } from '../strict-json.ts';

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
const MAX_EVENTS = 1000;

/** What a push asks the publisher to look at. */
export interface PushNotice {
  /** the repository path in the registry, e.g. "ns/app" */
  repository: string;
  /** absent when a manifest was pushed by digest */
  tag?: string;
  digest?: string;
}

const MANIFEST_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
]);
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha(?:256:[0-9a-f]{64}|512:[0-9a-f]{128})$/;

/** Why an envelope was refused, with the HTTP status to answer. */
export class NotificationError extends Error {
  override name = 'NotificationError';
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/** The media type of a Content-Type header (parameters dropped), lower case. */
function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The push notices of an envelope; throws NotificationError for anything that is not a valid envelope. */
export function parseNotification(contentType: string | undefined, body: Uint8Array): PushNotice[] {
  if (mediaType(contentType) !== EVENTS_MEDIA_TYPE) throw new NotificationError(415, `content type ${JSON.stringify((contentType ?? '').slice(0, 100))} is not ${EVENTS_MEDIA_TYPE}`);
  if (body.length > MAX_ENVELOPE_BYTES) throw new NotificationError(413, `envelope larger than ${MAX_ENVELOPE_BYTES} bytes`);
  let v: JsonValue;
  try {
    v = parseStrictJson(body);
  } catch (e) {
    throw new NotificationError(400, `envelope is not JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(v) || !Array.isArray(v['events'])) throw new NotificationError(400, 'envelope has no "events" array');
  const events = v['events'];
  if (events.length > MAX_EVENTS) throw new NotificationError(413, `more than ${MAX_EVENTS} events`);
  const out: PushNotice[] = [];
  const seen = new Set<string>();
  for (const [i, e] of events.entries()) {
    if (!isJsonObject(e)) throw new NotificationError(400, `event ${i} is not an object`);
    if (e['action'] !== 'push') continue;
    const t = e['target'];
    if (!isJsonObject(t)) throw new NotificationError(400, `push event ${i} has no target`);
    if (typeof t['mediaType'] !== 'string' || !MANIFEST_TYPES.has(t['mediaType'])) continue; // a blob: not an image yet
    const repository = t['repository'];
    if (typeof repository !== 'string' || !REPO_RE.test(repository) || repository.length > 255) throw new NotificationError(400, `push event ${i} names no valid repository`);
    const tag = t['tag'];
    if (tag !== undefined && (typeof tag !== 'string' || !TAG_RE.test(tag))) throw new NotificationError(400, `push event ${i} has an invalid tag`);
    const digest = t['digest'];
    if (digest !== undefined && (typeof digest !== 'string' || !DIGEST_RE.test(digest))) throw new NotificationError(400, `push event ${i} has an invalid digest`);
    const key = `${repository}:${tag ?? ''}@${digest ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ repository, ...(typeof tag === 'string' ? { tag } : {}), ...(typeof digest === 'string' ? { digest } : {}) });
  }
  return out;
}
