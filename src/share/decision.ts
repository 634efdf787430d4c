/**
 * The publisher's own records on a share, parsed strictly: decisions
 * (SHARE/decisions/ALG-HEX.json, layout.ts's Decision) and image entries
 * (images/ALG-HEX/image.json). The publisher reads them back to answer
 * `berth publish status` and to find the previous approved digest of a tag;
 * hosts may show them, but trust only signatures.
 */
import { readFile } from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { ifExists } from '../fsutil.ts';
import { parseDigest } from '../image/digest.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonObject } from '../strict-json.ts';
import type { Decision, DecisionState, ImageEntry } from './layout.ts';

/** Records are small; anything larger is not one of ours. */
const MAX_RECORD_BYTES = 1024 * 1024;

const STATES: readonly DecisionState[] = ['approved', 'blocked', 'pending'];

function corrupt(file: string, why: string): BerthError {
  return new BerthError('STORE_CORRUPT', `${file} is not a valid share record: ${why}`, { hint: 'remove it; the publisher writes it again on its next check' });
}

async function readObject(file: string): Promise<JsonObject | undefined> {
  const bytes = await ifExists(readFile(file));
  return bytes === undefined ? undefined : parseObject(bytes, file);
}

function parseObject(bytes: Buffer, file: string): JsonObject {
  if (bytes.length > MAX_RECORD_BYTES) throw corrupt(file, `larger than ${MAX_RECORD_BYTES} bytes`);
  let v;
  try {
    v = parseStrictJson(bytes);
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
  if (!isJsonObject(v)) throw corrupt(file, 'not a JSON object');
  return v;
}

const str = (file: string, o: JsonObject, k: string): string => {
  const v = o[k];
  if (typeof v !== 'string') throw corrupt(file, `${k} is not a string`);
  return v;
};

const strings = (file: string, o: JsonObject, k: string): string[] => {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw corrupt(file, `${k} is not a list of strings`);
  return v as string[];
};

export function encodeDecision(d: Decision): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

/** The decision in `file`, or undefined when there is none. */
export async function readDecision(file: string): Promise<Decision | undefined> {
  const o = await readObject(file);
  if (o === undefined) return undefined;
  const bad = unexpectedMembers(o, ['digest', 'reference', 'state', 'by', 'reasons', 'decided'], ['signed']);
  if (bad !== undefined) throw corrupt(file, bad);
  const state = str(file, o, 'state');
  if (!(STATES as readonly string[]).includes(state)) throw corrupt(file, `state ${JSON.stringify(state)} is unknown`);
  const by = str(file, o, 'by');
  if (by !== 'scan' && by !== 'operator') throw corrupt(file, `by ${JSON.stringify(by)} is unknown`);
  let digest;
  try {
    digest = parseDigest(str(file, o, 'digest'));
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
  return {
    digest,
    reference: str(file, o, 'reference'),
    state: state as DecisionState,
    by,
    reasons: strings(file, o, 'reasons'),
    decided: str(file, o, 'decided'),
    ...(o['signed'] === undefined ? {} : { signed: strings(file, o, 'signed') }),
  };
}

export function encodeImageEntry(e: ImageEntry): string {
  return `${JSON.stringify(e, null, 2)}\n`;
}

/** images/ALG-HEX/image.json, or undefined when the image is not there. */
export async function readImageEntry(file: string): Promise<ImageEntry | undefined> {
  const bytes = await ifExists(readFile(file));
  return bytes === undefined ? undefined : parseImageEntry(bytes, file);
}

/** image.json's bytes (read by a host's bounded probe, share/reader.ts), parsed strictly; `file` names it in errors. */
export function parseImageEntry(bytes: Buffer, file: string): ImageEntry {
  const o = parseObject(bytes, file);
  const bad = unexpectedMembers(o, ['reference', 'digest', 'published', 'size']);
  if (bad !== undefined) throw corrupt(file, bad);
  const size = o['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw corrupt(file, 'size is not a byte count');
  let digest;
  try {
    digest = parseDigest(str(file, o, 'digest'));
  } catch (e) {
    throw corrupt(file, (e as Error).message);
  }
  return { reference: str(file, o, 'reference'), digest, published: str(file, o, 'published'), size };
}
