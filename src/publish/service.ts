/**
 * `berth publish run`, the service (units/berth-publisher.service): learns of
 * new tags and digests by polling each watched repository's tag list (with
 * backoff after failures) and by docker-distribution's notifications on an
 * HTTP endpoint; publishes what is new, one image at a time, then applies
 * retention. A notification only makes the publisher look again: what it
 * publishes it resolves and verifies from the registry itself.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { BerthError } from '../errors.ts';
import type { OpContext } from '../ops/context.ts';
import type { SourceOptions } from '../transport/types.ts';
import { pollDelay } from './backoff.ts';
import type { PublisherConfig, WatchedRepository } from './config.ts';
import { MAX_ENVELOPE_BYTES, NotificationError, parseNotification, type PushNotice } from './notifications.ts';
import type { Publisher } from './publisher.ts';

/** One thing to look at: every (watched) tag of a repository, or one tag. */
export type Work = { kind: 'repo'; repo: WatchedRepository } | { kind: 'tag'; repo: WatchedRepository; tag: string };

const workKey = (w: Work) => (w.kind === 'repo' ? `repo ${w.repo.name}` : `tag ${w.repo.name}:${w.tag}`);

/**
 * One item at a time, in order; an item already waiting is not queued twice
 * (its callers share the one run). `run` never throws into the queue: it
 * reports, and its result says whether it worked.
 */
export class WorkQueue {
  private readonly waiting = new Map<string, { work: Work; done: Promise<boolean>; resolve: (ok: boolean) => void }>();
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly run: (w: Work) => Promise<boolean>) {}

  push(work: Work): Promise<boolean> {
    const key = workKey(work);
    const queued = this.waiting.get(key);
    if (queued) return queued.done;
    let resolve!: (ok: boolean) => void;
    const done = new Promise<boolean>((r) => (resolve = r));
    this.waiting.set(key, { work, done, resolve });
    void this.drain();
    return done;
  }

  get size(): number {
    return this.waiting.size + (this.running ? 1 : 0);
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const next = this.waiting.entries().next();
        if (next.done) break;
        const [key, item] = next.value;
        this.waiting.delete(key);
        let ok = false;
        try {
          ok = await this.run(item.work);
        } catch {
          ok = false; // run reports its own errors
        }
        item.resolve(ok);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

export interface ServiceHandle {
  /** the webhook's address, when it listens */
  address?: { host: string; port: number };
  stop(): Promise<void>;
}

async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new BerthError('CONFIG_INVALID', `cannot read the token file ${file}: ${(e as Error).message}`, { hint: 'token-file= names a file whose first line is the token' });
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token.length < 16) throw new BerthError('CONFIG_INVALID', `the token in ${file} is shorter than 16 characters`, { hint: 'use a long random token, e.g. openssl rand -hex 32' });
  return token;
}

function sourceOptions(config: PublisherConfig): SourceOptions {
  return {
    ...(config.tlsVerify === undefined ? {} : { tlsVerify: config.tlsVerify }),
    ...(config.certDir === undefined ? {} : { certDir: config.certDir }),
  };
}

/** Start the publisher's loops; they run until stop(). */
export async function startService(ctx: OpContext, config: PublisherConfig, publisher: Publisher): Promise<ServiceHandle> {
  if (config.repositories.length === 0) throw new BerthError('CONFIG_INVALID', 'no repository to watch', { hint: 'add repository=HOST[:PORT]/REPO lines to the publisher configuration' });
  const { registryTags, tagDigest, isNewToShare } = await import('../ops/share-watch.ts');
  const source = sourceOptions(config);
  let stopping = false;

  const checkTag = async (repo: WatchedRepository, tag: string): Promise<void> => {
    const digest = await tagDigest(repo.name, tag, source);
    if (!(await isNewToShare(publisher.share, repo.name, tag, digest))) return;
    ctx.report.step(`${repo.name}:${tag} is ${digest}: publishing`);
    const r = await publisher.publish(`docker://${repo.name}:${tag}`);
    const { retired, removed } = r.retention;
    if (retired.length + removed.length > 0) ctx.report.step(`retention: ${retired.length} retired, ${removed.length} removed`);
  };

  const queue = new WorkQueue(async (w) => {
    if (stopping) return false;
    try {
      if (w.kind === 'tag') {
        await checkTag(w.repo, w.tag);
      } else {
        const tags = w.repo.tags ?? (await registryTags(w.repo.name, source));
        let failed = 0;
        for (const tag of tags) {
          if (stopping) return false;
          try {
            await checkTag(w.repo, tag);
          } catch (e) {
            failed++;
            ctx.report.warn(`${w.repo.name}:${tag}: ${describe(e)}`);
          }
        }
        return failed === 0;
      }
      return true;
    } catch (e) {
      ctx.report.warn(`${workKey(w)}: ${describe(e)}`);
      return false;
    }
  });

  // Polls: one timer per repository, rescheduled when its check has run.
  const timers = new Set<NodeJS.Timeout>();
  const poll = (repo: WatchedRepository, failures: number): void => {
    if (stopping) return;
    void queue.push({ kind: 'repo', repo }).then((ok) => {
      const f = ok ? 0 : failures + 1;
      const delay = pollDelay(config.pollInterval, config.pollMaxBackoff, f);
      if (!ok) ctx.report.warn(`${repo.name}: check failed ${f} time(s) in a row; next poll in ${delay}s`);
      if (stopping) return;
      const t = setTimeout(() => {
        timers.delete(t);
        poll(repo, f);
      }, delay * 1000);
      timers.add(t);
    });
  };
  for (const repo of config.repositories) poll(repo, 0);

  let server: http.Server | undefined;
  let address: ServiceHandle['address'];
  if (config.listen !== undefined) {
    const token = config.tokenFile === undefined ? undefined : await readToken(config.tokenFile);
    if (token === undefined) ctx.report.warn('the notification endpoint has no token-file: anyone who reaches it can make the publisher look at the registry');
    server = http.createServer((req, res) => handle(req, res, token, (notices) => notify(notices)));
    const i = config.listen.lastIndexOf(':');
    const host = config.listen.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(config.listen.slice(i + 1));
    await new Promise<void>((resolve, reject) => {
      server!.once('error', (e) => reject(new BerthError('CONFIG_INVALID', `cannot listen on ${config.listen}: ${e.message}`, { hint: 'choose a free address for listen=' })));
      server!.listen(port, host, () => resolve());
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') address = { host: a.address, port: a.port };
    ctx.report.step(`listening for registry notifications on ${address?.host}:${address?.port}`);
  }

  /** A push names a repository path; every watched repository with that path is looked at again. */
  const notify = (notices: PushNotice[]): void => {
    for (const n of notices) {
      for (const repo of config.repositories) {
        if (repo.name.slice(repo.name.indexOf('/') + 1) !== n.repository) continue;
        if (n.tag !== undefined) {
          if (repo.tags === undefined || repo.tags.includes(n.tag)) void queue.push({ kind: 'tag', repo, tag: n.tag });
        } else {
          void queue.push({ kind: 'repo', repo });
        }
      }
    }
  };

  return {
    ...(address === undefined ? {} : { address }),
    stop: async () => {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (server) await new Promise<void>((r) => server!.close(() => r()));
      await queue.idle();
    },
  };
}

function describe(e: unknown): string {
  if (e instanceof BerthError) return `${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}`;
  return e instanceof Error ? e.message : String(e);
}

/** One request to the endpoint: POST, the token, the envelope; 200 once parsed (the checks run after). */
function handle(req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined, notify: (n: PushNotice[]) => void): void {
  const answer = (status: number, text: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    res.end(`${text}\n`);
  };
  if (req.method !== 'POST') {
    req.resume();
    return answer(405, 'POST notifications here');
  }
  if (token !== undefined) {
    const got = Buffer.from(req.headers['authorization'] ?? '');
    const want = Buffer.from(`Bearer ${token}`);
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      req.resume();
      return answer(401, 'missing or wrong token');
    }
  }
  const chunks: Buffer[] = [];
  let n = 0;
  let tooLarge = false;
  req.on('data', (c: Buffer) => {
    n += c.length;
    if (n > MAX_ENVELOPE_BYTES) {
      tooLarge = true;
      return;
    }
    chunks.push(c);
  });
  req.on('error', () => undefined);
  req.on('end', () => {
    if (tooLarge) return answer(413, 'envelope too large');
    try {
      const notices = parseNotification(req.headers['content-type'], Buffer.concat(chunks));
      notify(notices);
      answer(200, `${notices.length} push(es) noted`);
    } catch (e) {
      if (e instanceof NotificationError) return answer(e.status, e.message);
      answer(500, 'internal error');
    }
  });
}
