/**
 * OpenPGP keyrings as `gpg --export` writes them: binary (concatenated
 * transferable keys) or ASCII-armored (one or more armor blocks).
 */
import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import type { KeySource } from './policy.ts';

const MAX_KEYRING_BYTES = 16 * 1024 * 1024;
const armorBlockRe = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/** Public keys in `bytes` (secret keys count as their public part); throws Error when there are none. */
export async function readPublicKeys(bytes: Uint8Array, what: string): Promise<openpgp.PublicKey[]> {
  if (bytes.length > MAX_KEYRING_BYTES) throw new Error(`${what} is larger than ${MAX_KEYRING_BYTES} bytes`);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let keys: openpgp.Key[] = [];
  try {
    const blocks = text.match(armorBlockRe);
    if (blocks !== null) {
      for (const armoredKeys of blocks) keys.push(...(await openpgp.readKeys({ armoredKeys })));
    } else {
      keys = await openpgp.readKeys({ binaryKeys: bytes });
    }
  } catch (e) {
    throw new Error(`${what} is not an OpenPGP keyring: ${(e as Error).message}`);
  }
  if (keys.length === 0) throw new Error(`${what} holds no OpenPGP keys`);
  return keys.map((k) => (k.isPrivate() ? k.toPublic() : (k as openpgp.PublicKey)));
}

/** The keys of a signedBy requirement; throws Error naming the file that cannot be used. */
export async function loadKeys(source: KeySource): Promise<openpgp.PublicKey[]> {
  if ('keyData' in source) return readPublicKeys(source.keyData, 'keyData');
  const keys: openpgp.PublicKey[] = [];
  for (const p of source.keyPaths) {
    let bytes: Buffer;
    try {
      bytes = await readFile(p);
    } catch (e) {
      throw new Error(`cannot read key file ${p}: ${(e as Error).message}`);
    }
    keys.push(...(await readPublicKeys(bytes, `key file ${p}`)));
  }
  return keys;
}

/** The primary key fingerprint, as gpg prints it (40 upper-case hex digits for v4 keys). */
export function fingerprintOf(key: openpgp.Key): string {
  return key.getFingerprint().toUpperCase();
}
