/**
 * WWW-Authenticate (RFC 7235 section 4.1): one or more challenges, each a
 * scheme followed by comma-separated auth-params (name=token or
 * name="quoted string") or a token68. The header is untrusted registry input:
 * parsing is total (never throws) and skips what it cannot read.
 */

export interface AuthChallenge {
  /** Lowercase: "bearer", "basic", ... */
  readonly scheme: string;
  /** Parameter names lowercased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;
const SPACE = /[ \t]*/y;

export function parseWWWAuthenticate(header: string | readonly string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => parseWWWAuthenticate(h));
  const s = header.slice(0, 16 * 1024);
  const out: AuthChallenge[] = [];
  let i = 0;

  const skip = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m || m[0] === '') return undefined;
    i = re.lastIndex;
    return m[0];
  };
  const spaces = () => {
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
  };
  const quoted = (): string | undefined => {
    if (s[i] !== '"') return undefined;
    let v = '';
    for (let j = i + 1; j < s.length; j++) {
      const c = s[j]!;
      if (c === '\\' && j + 1 < s.length) v += s[++j];
      else if (c === '"') {
        i = j + 1;
        return v;
      } else v += c;
    }
    return undefined; // unterminated
  };

  while (i < s.length) {
    // Separators between challenges (and empty list elements).
    while (i < s.length && /[ \t,]/.test(s[i]!)) i++;
    if (i >= s.length) break;
    const scheme = skip(TOKEN);
    if (scheme === undefined) break; // garbage: stop rather than guess
    const params: Record<string, string> = {};
    spaces();
    // A token68 ("Basic dXNlcg==") is a credential-like blob, not params.
    const save = i;
    const t68 = skip(TOKEN68);
    if (t68 !== undefined) {
      spaces();
      if ((i >= s.length || s[i] === ',') && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[^=]/.test(t68)) {
        params['token68'] = t68;
        out.push({ scheme: scheme.toLowerCase(), params });
        continue;
      }
      i = save;
    }
    for (;;) {
      const before = i;
      spaces();
      const name = skip(TOKEN);
      if (name === undefined) break;
      spaces();
      if (s[i] !== '=') {
        // "name" without "=" is the next challenge's scheme.
        i = before;
        break;
      }
      i++;
      spaces();
      const value = s[i] === '"' ? quoted() : skip(TOKEN);
      if (value === undefined) {
        i = s.length; // unreadable value: keep what we have
        break;
      }
      params[name.toLowerCase()] = value;
      spaces();
      if (s[i] !== ',') break;
      // A comma either continues this challenge's params or starts the next challenge.
      const afterComma = i + 1;
      i = afterComma;
      while (i < s.length && /[ \t,]/.test(s[i]!)) i++;
      const look = i;
      const n = skip(TOKEN);
      spaces();
      const isParam = n !== undefined && s[i] === '=';
      i = look;
      if (!isParam) break;
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
  return out;
}

/** The challenge to answer: Bearer when offered (registries prefer it), else Basic. */
export function pickChallenge(challenges: readonly AuthChallenge[]): AuthChallenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer' && c.params['realm']) ?? challenges.find((c) => c.scheme === 'basic');
}
