import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ResumableBlobStream, type ResumableBlobOptions } from '../../src/transport/docker/blob_stream.ts';

const BLOB = randomBytes(1024 * 1024);

type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void;

describe('ResumableBlobStream', () => {
  let server: http.Server;
  let port: number;
  let behaviour: Behaviour;
  let requests: (string | undefined)[];

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.headers.range);
      behaviour(req, res, requests.length);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const open = (offset: number) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/blob', agent: false, headers: offset > 0 ? { range: `bytes=${offset}-` } : {} }, resolve);
      req.on('error', reject);
    });

  /** Serve BLOB, honouring "Range: bytes=N-". */
  const serve = (req: IncomingMessage, res: ServerResponse, cut?: number) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const body = BLOB.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${start}-${BLOB.length - 1}/${BLOB.length}` } : {}) });
    if (cut === undefined) res.end(body);
    else res.write(body.subarray(0, cut), () => res.socket?.destroy());
  };

  async function read(options: Partial<ResumableBlobOptions> = {}, consume?: (chunk: Buffer) => Promise<void>): Promise<Buffer> {
    requests = [];
    const o: ResumableBlobOptions = { size: BLOB.length, offset: 0, resumeAttempts: 3, idleTimeoutMs: 300, backoffMs: 1, what: 'blob', ...options };
    const stream = new ResumableBlobStream(open, await open(o.offset), o);
    const chunks: Buffer[] = [];
    for await (const c of stream) {
      chunks.push(c as Buffer);
      if (consume) await consume(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  it('joins a download cut off twice into the whole blob', async () => {
    behaviour = (req, res, n) => serve(req, res, n <= 2 ? 300_000 : undefined);
    assert.ok((await read()).equals(BLOB));
    assert.equal(requests.length, 3);
    assert.equal(requests[0], undefined);
    assert.match(requests[1]!, /^bytes=\d+-$/);
  });

  it('starts at an offset', async () => {
    behaviour = (req, res) => serve(req, res);
    assert.ok((await read({ offset: 1000 })).equals(BLOB.subarray(1000)));
    assert.deepEqual(requests, ['bytes=1000-']);
  });

  it('skips what it has when a server answers a range request with 200', async () => {
    behaviour = (req, res, n) => (n === 1 ? serve(req, res, 400_000) : (delete req.headers.range, serve(req, res)));
    assert.ok((await read()).equals(BLOB));
  });

  it('refuses a 206 that starts elsewhere', async () => {
    behaviour = (req, res, n) => {
      if (n === 1) return serve(req, res, 100_000);
      res.writeHead(206, { 'content-range': `bytes 0-${BLOB.length - 1}/${BLOB.length}` });
      res.end(BLOB);
    };
    await assert.rejects(read(), (e: { code?: string; message?: string }) => e.code === 'REGISTRY_ERROR' && /Content-Range/.test(e.message!));
  });

  it('fails after the bounded number of resumes', async () => {
    behaviour = (req, res) => serve(req, res, 1000);
    await assert.rejects(read({ resumeAttempts: 2 }), (e: { code?: string; message?: string }) => e.code === 'REGISTRY_UNREACHABLE' && /continued 2 time/.test(e.message!));
    assert.equal(requests.length, 3);
  });

  it('does not count a slow consumer as a stalled server', async () => {
    behaviour = (req, res) => serve(req, res);
    let slept = false;
    const got = await read({ idleTimeoutMs: 100, resumeAttempts: 0 }, async () => {
      if (!slept) {
        slept = true;
        await sleep(400);
      }
    });
    assert.ok(got.equals(BLOB));
    assert.equal(requests.length, 1);
  });

  it('times out a server that stops sending', async () => {
    behaviour = (req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 1000));
    };
    await assert.rejects(read({ idleTimeoutMs: 100, resumeAttempts: 0 }), (e: { code?: string; message?: string }) => e.code === 'REGISTRY_UNREACHABLE' && /no data for 0\.1s after 1000 of/.test(e.message!));
  });
});
