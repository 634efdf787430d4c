import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decompressor, zstdBinary, type DecompressorOptions } from '../../src/image/compression.ts';
import type { Compression } from '../../src/image/manifest.ts';

const hasZstd = zstdBinary() !== undefined;

function zstdCompress(data: Buffer, level = 3): Buffer {
  return execFileSync('zstd', [`-${level}`, '-c', '-q'], { input: data, maxBuffer: 256 * 1024 * 1024 });
}

/** Feed `input` in small chunks and collect the output (or the error). */
async function run(compression: Compression, input: Buffer, options?: DecompressorOptions): Promise<Buffer> {
  const out: Buffer[] = [];
  const chunks = Array.from({ length: Math.ceil(input.length / 7000) }, (_, i) => input.subarray(i * 7000, (i + 1) * 7000));
  await pipeline(Readable.from(chunks), decompressor(compression, options), async function* (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  return Buffer.concat(out);
}

function sample(): Buffer {
  // Compressible but not trivial: text plus random bytes.
  return Buffer.concat([Buffer.from('berth layer '.repeat(20_000)), randomBytes(100_000), Buffer.from('end\n')]);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Live `zstd` processes of ours (children of this process). */
function zstdChildren(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-x', 'zstd'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('decompressor', () => {
  it('passes uncompressed data through', async () => {
    const data = sample();
    assert.equal(sha(await run('none', data)), sha(data));
  });

  it('round-trips gzip (node:zlib)', async () => {
    const data = sample();
    assert.equal(sha(await run('gzip', gzipSync(data))), sha(data));
  });

  it('round-trips zstd through the zstd binary', { skip: !hasZstd && 'no zstd binary' }, async () => {
    const data = sample();
    assert.equal(sha(await run('zstd', zstdCompress(data), { zstd: 'binary' })), sha(data));
    assert.deepEqual(zstdChildren(), []);
  });

  it('round-trips zstd through fzstd when forced', { skip: !hasZstd && 'no zstd binary to compress with' }, async () => {
    const data = sample();
    assert.equal(sha(await run('zstd', zstdCompress(data, 19), { zstd: 'js' })), sha(data));
  });

  it('reads multi-frame zstd with both engines', { skip: !hasZstd && 'no zstd binary' }, async () => {
    const a = Buffer.from('first frame '.repeat(1000));
    const b = randomBytes(5000);
    const both = Buffer.concat([zstdCompress(a), zstdCompress(b)]);
    for (const engine of ['binary', 'js'] as const) {
      assert.equal(sha(await run('zstd', both, { zstd: engine })), sha(Buffer.concat([a, b])), engine);
    }
  });

  for (const [compression, compress, engine] of [
    ['gzip', gzipSync, undefined],
    ['zstd', (b: Buffer) => zstdCompress(b), 'binary'],
    ['zstd', (b: Buffer) => zstdCompress(b), 'js'],
  ] as const) {
    const label = `${compression}${engine ? ` (${engine})` : ''}`;
    it(`stops a ${label} bomb at maxBytes with LAYER_INVALID`, { skip: compression === 'zstd' && !hasZstd && 'no zstd binary' }, async () => {
      const bomb = compress(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros: a few KiB compressed
      assert.ok(bomb.length < 1024 * 1024);
      await assert.rejects(run(compression, bomb, { maxBytes: 1024 * 1024, ...(engine ? { zstd: engine } : {}) }), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'LAYER_INVALID');
        assert.match(e.message!, /more than 1048576 bytes/);
        return true;
      });
      assert.deepEqual(zstdChildren(), []);
    });

    it(`fails corrupt ${label} input with LAYER_INVALID`, { skip: compression === 'zstd' && !hasZstd && 'no zstd binary' }, async () => {
      const good = compress(sample());
      const bad = Buffer.from(good);
      bad.fill(0x55, 20, 400);
      await assert.rejects(run(compression, bad, engine ? { zstd: engine } : {}), { code: 'LAYER_INVALID' });
      // Truncated input is an error too, not a short layer.
      await assert.rejects(run(compression, good.subarray(0, good.length - 100), engine ? { zstd: engine } : {}), { code: 'LAYER_INVALID' });
      assert.deepEqual(zstdChildren(), []);
    });
  }

  it('kills the zstd process when the stream is destroyed early', { skip: !hasZstd && 'no zstd binary' }, async () => {
    const d = decompressor('zstd', { zstd: 'binary' });
    d.write(zstdCompress(sample()).subarray(0, 1000));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(zstdChildren().length, 1);
    d.destroy();
    for (let i = 0; i < 50 && zstdChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(zstdChildren(), []);
  });
});
