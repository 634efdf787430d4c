/**
 * Layer records: what a layer contained, in tar order, with file contents
 * replaced by object keys. One small text file per layer, layers/ALG-HEX:
 *
 *   {"format":"berth-layer","version":1,"diffId":"sha256:…","entries":N,"bytes":B}
 *   [
 *   ["d","etc",493,0,0,946684800],
 *   ["f","etc/passwd",420,0,0,946684800,"<object key>",73],
 *   ["l","bin/sh","busybox",0,0,946684800,"<object key>"],
 *   …
 *   ]
 *   end <sha256 hex of everything above this line>
 *
 * Tuples: d dir (path mode uid gid mtime) · f file (… object size) ·
 * h hard link (path target object size) · l symlink (path target uid gid
 * mtime object) · w whiteout (hidden path) · o opaque (dir path) · c/b/p device or
 * fifo (path mode uid gid mtime major minor). JSON keeps hostile names
 * (newlines, quotes) unambiguous; one JSON text parses fast; the trailer
 * catches truncation and bit rot.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.ts';
import { algorithmOf, encodedOf, parseDigest, type Digest } from '../image/digest.ts';
import { isObjectKey } from './objects.ts';
import type { LayerEntry, LayerRecord } from './types.ts';

type Tuple = (string | number)[];

export function layerFileName(diffId: Digest): string {
  return `${algorithmOf(diffId)}-${encodedOf(diffId)}`;
}

/** The layer's record, undefined when absent; throws an Error saying what is wrong when it is damaged. */
export async function readLayerRecord(layersDir: string, diffId: Digest): Promise<LayerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(layersDir, layerFileName(diffId)), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  return decodeLayerRecord(text, diffId);
}

export function encodeLayerRecord(r: LayerRecord): string {
  const head = JSON.stringify({ format: 'berth-layer', version: 1, diffId: r.diffId, entries: r.entries, bytes: r.bytes });
  const lines = r.records.map((e) => JSON.stringify(toTuple(e)));
  const body = `${head}\n[\n${lines.join(',\n')}\n]\n`;
  return `${body}end ${createHash('sha256').update(body).digest('hex')}\n`;
}

/** Parse and check a record; throws an Error saying what is wrong. */
export function decodeLayerRecord(text: string, expected: Digest): LayerRecord {
  const endAt = text.lastIndexOf('\n', text.length - 2) + 1;
  if (endAt <= 0 || !text.endsWith('\n') || !text.startsWith('end ', endAt)) throw new Error('the record is truncated');
  const body = text.slice(0, endAt);
  const sum = text.slice(endAt + 4, text.length - 1);
  if (createHash('sha256').update(body).digest('hex') !== sum) throw new Error('the record checksum does not match');
  const nl = body.indexOf('\n');
  const head: unknown = JSON.parse(body.slice(0, nl));
  if (!isObj(head) || head['format'] !== 'berth-layer' || head['version'] !== 1) throw new Error('not a berth layer record (version 1)');
  const diffId = parseDigest(String(head['diffId']), 'layer record diff_id');
  if (diffId !== expected) throw new Error(`the record is for ${diffId}`);
  const entries = num(head['entries']);
  const bytes = num(head['bytes']);
  const tuples: unknown = JSON.parse(body.slice(nl + 1));
  if (!Array.isArray(tuples)) throw new Error('the entry list is not a list');
  return { diffId, entries, bytes, records: tuples.map(fromTuple) };
}

function toTuple(e: LayerEntry): Tuple {
  switch (e.type) {
    case 'dir':
      return ['d', e.path, e.mode, e.uid, e.gid, e.mtime];
    case 'file':
      return ['f', e.path, e.mode, e.uid, e.gid, e.mtime, e.object, e.size];
    case 'hardlink':
      return ['h', e.path, e.target, e.object, e.size];
    case 'symlink':
      return ['l', e.path, e.target, e.uid, e.gid, e.mtime, e.object];
    case 'whiteout':
      return ['w', e.path];
    case 'opaque':
      return ['o', e.path];
    case 'char':
    case 'block':
    case 'fifo':
      return [e.type === 'char' ? 'c' : e.type === 'block' ? 'b' : 'p', e.path, e.mode, e.uid, e.gid, e.mtime, e.devmajor, e.devminor];
  }
}

function fromTuple(t: unknown): LayerEntry {
  if (!Array.isArray(t) || typeof t[0] !== 'string' || typeof t[1] !== 'string') throw new Error('malformed entry');
  const path = t[1];
  switch (t[0]) {
    case 'd':
      return { type: 'dir', path, mode: num(t[2]), uid: num(t[3]), gid: num(t[4]), mtime: time(t[5]) };
    case 'f':
      return { type: 'file', path, mode: num(t[2]), uid: num(t[3]), gid: num(t[4]), mtime: time(t[5]), object: key(t[6]), size: num(t[7]) };
    case 'h':
      return { type: 'hardlink', path, target: str(t[2]), object: key(t[3]), size: num(t[4]) };
    case 'l':
      return { type: 'symlink', path, target: str(t[2]), uid: num(t[3]), gid: num(t[4]), mtime: time(t[5]), object: key(t[6]) };
    case 'w':
      return { type: 'whiteout', path };
    case 'o':
      return { type: 'opaque', path };
    case 'c':
    case 'b':
    case 'p': {
      const type = t[0] === 'c' ? 'char' : t[0] === 'b' ? 'block' : 'fifo';
      return { type, path, mode: num(t[2]), uid: num(t[3]), gid: num(t[4]), mtime: time(t[5]), devmajor: num(t[6]), devminor: num(t[7]) };
    }
    default:
      throw new Error(`unknown entry type ${JSON.stringify(t[0])}`);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error('malformed number');
  return v;
}

function time(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error('malformed time');
  return v;
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error('malformed string');
  return v;
}

function key(v: unknown) {
  if (typeof v !== 'string' || !isObjectKey(v)) throw new Error('malformed object key');
  return v;
}
