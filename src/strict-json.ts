/**
 * A strict JSON parser for untrusted documents berth acts on (signature
 * payloads, policy.json, manifests, indexes and image configs).
 * JSON.parse silently keeps the last of duplicated members, so a document could
 * mean one thing to berth and another to a different verifier; containers-signature(5)
 * asks consumers to refuse such ambiguity. This parser refuses duplicate members,
 * invalid UTF-8, a byte order mark and anything outside RFC 8259.
 * Objects come back with a null prototype, so "__proto__" is just a key.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

const MAX_DEPTH = 64;

const stringRe = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const numberRe = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const wsRe = /[ \t\n\r]*/y;

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
}

/** Parses `input` (bytes are decoded as strict UTF-8); throws JsonSyntaxError saying what and where. */
export function parseStrictJson(input: Uint8Array | string): JsonValue {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      throw new JsonSyntaxError('not valid UTF-8');
    }
  }
  let pos = 0;

  const fail = (what: string): never => {
    const line = text.slice(0, pos).split('\n').length;
    throw new JsonSyntaxError(`${what} at line ${line}, offset ${pos}`);
  };
  const skipWs = (): void => {
    wsRe.lastIndex = pos;
    wsRe.exec(text);
    pos = wsRe.lastIndex;
  };
  const parseString = (): string => {
    stringRe.lastIndex = pos;
    const m = stringRe.exec(text);
    if (m === null) return fail('invalid string');
    pos = stringRe.lastIndex;
    return JSON.parse(m[0]) as string;
  };

  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    skipWs();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj = Object.create(null) as JsonObject;
      skipWs();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skipWs();
        if (text[pos] !== '"') fail('expected a member name');
        const key = parseString();
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate member ${JSON.stringify(key)}`);
        skipWs();
        if (text[pos] !== ':') fail('expected ":"');
        pos++;
        obj[key] = parseValue(depth + 1);
        skipWs();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      pos++;
      const arr: JsonValue[] = [];
      skipWs();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWs();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    numberRe.lastIndex = pos;
    const m = numberRe.exec(text);
    if (m === null || m[0] === '') return fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
    pos = numberRe.lastIndex;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) fail('number out of range');
    return n;
  };

  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail('trailing data after the JSON value');
  return value;
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks that `obj` has exactly the `required` members plus any of `optional`;
 * returns a reason for the first violation, or undefined.
 */
export function unexpectedMembers(obj: JsonObject, required: readonly string[], optional: readonly string[] = []): string | undefined {
  for (const k of required) if (!Object.prototype.hasOwnProperty.call(obj, k)) return `missing member ${JSON.stringify(k)}`;
  for (const k of Object.keys(obj)) {
    if (!required.includes(k) && !optional.includes(k)) return `unknown member ${JSON.stringify(k)}`;
  }
  return undefined;
}
