/**
 * Making a signature the way `gpg --sign` and skopeo do: an OpenPGP Signed
 * Message (one-pass signature, literal data, signature) inside a ZLIB
 * Compressed Data packet, binary. gpg, gpgme (skopeo, podman) and berth verify it.
 */
import { deflateSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { BerthError } from '../errors.ts';

const armoredPrivateRe = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;

/** Reads a secret key (armored or binary, as gpg --export-secret-keys writes) and unlocks it. Throws KEY_INVALID. */
export async function readSigningKey(untrustedKeyBytes: Uint8Array, what: string, passphrase: string | undefined): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    const text = Buffer.from(untrustedKeyBytes.buffer, untrustedKeyBytes.byteOffset, untrustedKeyBytes.byteLength).toString('latin1');
    key = armoredPrivateRe.test(text)
      ? await openpgp.readPrivateKey({ armoredKey: text })
      : await openpgp.readPrivateKey({ binaryKey: untrustedKeyBytes });
  } catch (e) {
    throw new BerthError('KEY_INVALID', `${what} is not an OpenPGP secret key (${(e as Error).message})`, {
      hint: 'export one with gpg --export-secret-keys [--armor] FINGERPRINT > KEY',
    });
  }
  if (key.isDecrypted()) return key;
  if (passphrase === undefined) {
    throw new BerthError('KEY_INVALID', `${what} is protected by a passphrase`, { hint: 'give it with --passphrase-file FILE' });
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (e) {
    throw new BerthError('KEY_INVALID', `cannot unlock ${what}: ${(e as Error).message}`, { hint: 'check the passphrase file' });
  }
}

/** An OpenPGP packet (RFC 4880 4.2, new format) with tag `tag` around `body`. */
function packet(tag: number, body: Uint8Array): Buffer {
  const n = body.length;
  let length: Buffer;
  if (n < 192) length = Buffer.from([n]);
  else if (n < 8384) length = Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  else {
    length = Buffer.alloc(5);
    length[0] = 0xff;
    length.writeUInt32BE(n, 1);
  }
  return Buffer.concat([Buffer.from([0xc0 | tag]), length, body]);
}

const COMPRESSED_DATA_TAG = 8;
const ZLIB = 2; // RFC 4880 9.3

/** Signs `payload`; returns the binary signature blob. */
export async function signPayload(payload: Uint8Array, key: openpgp.PrivateKey): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: payload });
  let signed: Uint8Array;
  try {
    signed = await openpgp.sign({ message, signingKeys: key, format: 'binary' });
  } catch (e) {
    throw new BerthError('KEY_INVALID', `the key ${key.getFingerprint().toUpperCase()} cannot sign: ${(e as Error).message}`, {
      hint: 'use a key (or subkey) with the signing capability that has not expired or been revoked',
    });
  }
  // openpgp.sign() does not compress (and its Message#compress yields a stream
  // type it does not export a reader for): wrap the signed message in a ZLIB
  // Compressed Data packet ourselves, as gpg does by default.
  return packet(COMPRESSED_DATA_TAG, Buffer.concat([Buffer.from([ZLIB]), deflateSync(signed)]));
}
