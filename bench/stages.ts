/**
 * Child process of bench/run.ts: one stage of berth's layer pipeline over the
 * benchmark image's three layer blobs (local files, all layers at once, as
 * a pull does), so the cost of each stage can be told apart:
 *
 *   digest     read + sha256 of the compressed blob (the layer digest)
 *   gunzip     + zlib decompression (berth's decompressor) + sha256 (the diff_id)
 *   parse      + tar parsing (berth's TarReader) + object keys (sha256 per file)
 *   import     the whole Store.importLayer (objects written, synced, renamed)
 *   zlib-16k, zlib-256k, gzip-dc, pigz-dc
 *              decompression alone: node:zlib with its default output chunk
 *              and with berth's, or a `gzip -dc` / `pigz -dc` child process
 *
 * Usage: node --import tsx bench/stages.ts MODE LAYERS-JSON [STORE-ROOT]
 * Prints {"ms": N}: the work alone, without process start-up.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { decompressor } from '../src/image/compression.ts';
import { VerifyingStream, verifiedStream, type Digest } from '../src/image/digest.ts';
import { objectHasher } from '../src/store/objects.ts';
import { Store } from '../src/store/store.ts';
import { TarReader } from '../src/store/tar-reader.ts';

interface Layer {
  file: string;
  digest: string;
  diffId: string;
}

const [mode, layersJson, root] = process.argv.slice(2);
if (!mode || !layersJson) throw new Error('usage: stages.ts MODE LAYERS-JSON [STORE-ROOT]');
const layers = JSON.parse(layersJson) as Layer[];

async function drain(s: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of s);
}

function compressed(l: Layer): Readable {
  return verifiedStream(createReadStream(l.file, { highWaterMark: 256 * 1024 }), l.digest as Digest, undefined, 'layer');
}

function uncompressed(l: Layer): Readable {
  const c = compressed(l);
  const d = decompressor('gzip');
  const u = new VerifyingStream(l.diffId as Digest, undefined, 'diff_id');
  c.once('error', (e) => d.destroy(e));
  d.once('error', (e) => u.destroy(e));
  return c.pipe(d).pipe(u);
}

function child(cmd: string, file: string): Readable {
  const p = spawn(cmd, ['-dc', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  return p.stdout;
}

const store = mode === 'import' ? await Store.open(root!) : undefined;
const t0 = process.hrtime.bigint();
await Promise.all(
  layers.map(async (l) => {
    switch (mode) {
      case 'digest':
        return drain(compressed(l));
      case 'gunzip':
        return drain(uncompressed(l));
      case 'parse': {
        const r = new TarReader(uncompressed(l), { maxBytes: 64 * 1024 ** 3, maxExtendedHeaderBytes: 1024 * 1024 });
        for (let h = await r.next(); h !== null; h = await r.next()) {
          if (h.type !== 'file') continue;
          const hash = objectHasher({ mode: h.mode, uid: h.uid, gid: h.gid, xattrs: h.xattrs });
          for await (const c of r.data()) hash.update(c);
          hash.digest('hex');
        }
        return r.drain();
      }
      case 'import':
        return store!.importLayer(l.diffId as Digest, uncompressed(l));
      case 'zlib-16k':
        return drain(createReadStream(l.file, { highWaterMark: 256 * 1024 }).pipe(createGunzip()));
      case 'zlib-256k':
        return drain(createReadStream(l.file, { highWaterMark: 256 * 1024 }).pipe(createGunzip({ chunkSize: 256 * 1024 })));
      case 'gzip-dc':
        return drain(child('gzip', l.file));
      case 'pigz-dc':
        return drain(child('pigz', l.file));
      default:
        throw new Error(`unknown mode ${mode}`);
    }
  }),
);
process.stdout.write(`${JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 })}\n`);
