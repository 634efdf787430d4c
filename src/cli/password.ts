/**
 * The password of a cosign key, found as cosign finds it: --passphrase-file
 * (its first line), else $COSIGN_PASSWORD (set, even empty), else a prompt
 * on the terminal without echo; with no terminal, an error saying where to
 * put it. Asked only when a key needs it.
 */
import { readFile } from 'node:fs/promises';
import { BerthError } from '../errors.ts';

export interface PasswordOptions {
  passphraseFile?: string | undefined;
  /** keygen: ask twice on the terminal, and both must agree. */
  confirm?: boolean;
}

export function cosignPassword(options: PasswordOptions): () => Promise<string> {
  return async () => {
    if (options.passphraseFile !== undefined) {
      try {
        return (await readFile(options.passphraseFile, 'utf8')).split(/\r?\n/)[0] ?? '';
      } catch (e) {
        throw new BerthError('USAGE', `cannot read the passphrase file ${options.passphraseFile}: ${(e as Error).message}`);
      }
    }
    const env = process.env['COSIGN_PASSWORD'];
    if (env !== undefined) return env;
    if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
      throw new BerthError('KEY_PASSWORD', 'the cosign key needs a password and there is no terminal to ask on', { hint: 'set COSIGN_PASSWORD or pass --passphrase-file FILE' });
    }
    const first = await prompt('Enter password for private key: ');
    if (options.confirm === true && (await prompt('Enter password for private key again: ')) !== first) {
      throw new BerthError('KEY_PASSWORD', 'the two passwords differ', { hint: 'run the command again' });
    }
    return first;
  };
}

/** Reads one line from the terminal with echo off. */
function prompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let line = '';
    const done = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (error === undefined) resolve(line);
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new BerthError('KEY_PASSWORD', 'no password given', { hint: 'set COSIGN_PASSWORD or pass --passphrase-file FILE' }));
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else line += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
