/**
 * Version ordering of the package ecosystems berth reads: Debian's (dpkg's
 * algorithm, deb-version(7)) and Alpine's (apk-tools' version comparison).
 * Both are total on any string: a version the format does not allow still
 * compares deterministically (dpkg's comparison ignores validity; apk's
 * stops at the first invalid token, as apk does), so a hostile version can
 * neither crash a scan nor be skipped.
 */

/** <0, 0, >0 as a is lower than, equal to, higher than b. */
export type VersionCompare = (a: string, b: string) => number;

// --- Debian ----------------------------------------------------------------

interface DebVersion {
  epoch: bigint;
  upstream: string;
  revision: string;
}

function parseDeb(v: string): DebVersion {
  const s = v.trim();
  let epoch = 0n;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0 && /^[0-9]+$/.test(s.slice(0, colon))) {
    epoch = BigInt(s.slice(0, colon));
    rest = s.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: '' };
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** dpkg's weight of one non-digit character: end and digits 0, "~" below everything, letters before the rest. */
function debOrder(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (c === '~') return -1;
  if (isAlpha(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: alternating non-digit runs (by debOrder) and digit runs (numerically). */
function debPartCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const d = debOrder(a[i]) - debOrder(b[j]);
      if (d !== 0) return d;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let firstDiff = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

export function compareDebian(a: string, b: string): number {
  const x = parseDeb(a);
  const y = parseDeb(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  return Math.sign(debPartCompare(x.upstream, y.upstream)) || Math.sign(debPartCompare(x.revision, y.revision));
}

// --- Alpine ----------------------------------------------------------------
//
// An apk version is digit{.digit}...{letter}{_suffix{number}}...{-rN}. It is
// read as a sequence of typed tokens; two versions compare token by token
// (value first) while the token types agree. When one runs out or the types
// differ, the one that continues is higher, unless what continues is a
// pre-release suffix (_alpha, _beta, _pre, _rc). A component after "." that
// starts with zeros counts its extra zeros negatively (so 1.001 < 1.01 <
// 1.1). This is apk-tools 2.x (2.14, what Alpine releases ship).

const enum Tok {
  Invalid = -1,
  DigitOrZero = 0,
  Digit = 1,
  Letter = 2,
  Suffix = 3,
  SuffixNo = 4,
  RevisionNo = 5,
  End = 6,
}

const PRE_SUFFIXES = ['alpha', 'beta', 'pre', 'rc'];
const POST_SUFFIXES = ['cvs', 'svn', 'git', 'hg', 'p'];
const isLower = (c: string | undefined): boolean => c !== undefined && c >= 'a' && c <= 'z';

class ApkReader {
  pos = 0;
  type: Tok = Tok.Digit;
  constructor(readonly s: string) {}

  /** The type of the token at pos (consuming its separator), after a token of type `this.type`. */
  private nextType(): void {
    const s = this.s;
    let n: Tok = Tok.Invalid;
    const c = s[this.pos];
    if (c === undefined) {
      n = Tok.End;
    } else if ((this.type === Tok.Digit || this.type === Tok.DigitOrZero) && isLower(c)) {
      n = Tok.Letter;
    } else if (this.type === Tok.Letter && isDigit(c)) {
      n = Tok.Digit;
    } else if (this.type === Tok.Suffix && isDigit(c)) {
      n = Tok.SuffixNo;
    } else {
      if (c === '.') n = Tok.DigitOrZero;
      else if (c === '_') n = Tok.Suffix;
      else if (c === '-' && s[this.pos + 1] === 'r') {
        n = Tok.RevisionNo;
        this.pos++;
      }
      this.pos++;
    }
    // Tokens only move forward (digits, letter, suffixes, revision), with three allowed steps back.
    if (n < this.type) {
      const ok =
        (n === Tok.DigitOrZero && this.type === Tok.Digit) ||
        (n === Tok.Suffix && this.type === Tok.SuffixNo) ||
        (n === Tok.Digit && this.type === Tok.Letter);
      if (!ok) n = Tok.Invalid;
    }
    this.type = n;
  }

  /** The value of the token at pos (of type this.type); advances to the next token. */
  take(): bigint {
    const s = this.s;
    if (this.pos >= s.length) {
      this.type = Tok.End;
      return 0n;
    }
    let v = 0n;
    let i = this.pos;
    let next: Tok | undefined;
    switch (this.type) {
      case Tok.DigitOrZero:
        if (s[i] === '0') {
          // Zeros after the first one count negatively; the last zero is then read as a number (0).
          while (s[i + 1] === '0') i++;
          v = -BigInt(i - this.pos);
          next = Tok.Digit;
          break;
        }
      // falls through: a component that does not start with 0 is a number
      case Tok.Digit:
      case Tok.SuffixNo:
      case Tok.RevisionNo: {
        const start = i;
        while (isDigit(s[i])) i++;
        // apk refuses numbers of 18 digits or more (they would overflow its int64).
        if (i - start >= 18) {
          this.type = Tok.Invalid;
          return -1n;
        }
        v = i > start ? BigInt(s.slice(start, i)) : 0n;
        break;
      }
      case Tok.Letter:
        v = BigInt(s.charCodeAt(i));
        i++;
        break;
      case Tok.Suffix: {
        const rest = s.slice(i);
        const pre = PRE_SUFFIXES.findIndex((x) => rest.startsWith(x));
        if (pre >= 0) {
          v = BigInt(pre - PRE_SUFFIXES.length);
          i += PRE_SUFFIXES[pre]!.length;
          break;
        }
        const post = POST_SUFFIXES.findIndex((x) => rest.startsWith(x));
        if (post >= 0) {
          v = BigInt(post);
          i += POST_SUFFIXES[post]!.length;
          break;
        }
        this.type = Tok.Invalid;
        return -1n;
      }
      default:
        this.type = Tok.Invalid;
        return -1n;
    }
    this.pos = i;
    if (this.pos >= s.length) this.type = Tok.End;
    else if (next !== undefined) this.type = next;
    else this.nextType();
    return v;
  }
}

export function compareAlpine(a: string, b: string): number {
  const x = new ApkReader(a);
  const y = new ApkReader(b);
  let xv = 0n;
  let yv = 0n;
  while (x.type === y.type && x.type !== Tok.End && x.type !== Tok.Invalid && xv === yv) {
    xv = x.take();
    yv = y.take();
  }
  if (xv !== yv) return xv < yv ? -1 : 1;
  if (x.type === y.type) return 0;
  // Equal so far: the longer one is higher, unless it continues with a pre-release suffix.
  const xt = x.type;
  const yt = y.type;
  if (xt === Tok.Suffix && x.take() < 0n) return -1;
  if (yt === Tok.Suffix && y.take() < 0n) return 1;
  if (xt > yt) return -1;
  if (yt > xt) return 1;
  return 0;
}

// --- per ecosystem -----------------------------------------------------------

/** The comparison for an OSV ecosystem ("Debian:12", "Alpine:v3.19", "Ubuntu:22.04:LTS"), or undefined for one berth does not order. */
export function versionCompareFor(ecosystem: string): VersionCompare | undefined {
  switch (baseEcosystem(ecosystem)) {
    case 'Debian':
    case 'Ubuntu':
      return compareDebian;
    case 'Alpine':
      return compareAlpine;
    default:
      return undefined;
  }
}

/** "Debian:12" -> "Debian". */
export function baseEcosystem(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i < 0 ? ecosystem : ecosystem.slice(0, i);
}
