/** "did you mean X?" for mistyped commands, options, plan keys and names. */

/** The closest of `names` to `word`, if it is close enough to be a likely typo. */
export function closest(word: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(word.toLowerCase(), n.toLowerCase());
    if (d < bestD) [best, bestD] = [n, d];
  }
  // One edit in a short word, a third of the letters in a longer one.
  return best !== undefined && bestD > 0 && bestD <= Math.max(1, Math.floor(Math.min(word.length, best.length) / 3)) ? best : undefined;
}

/** " (did you mean X?)"-ready text, or undefined. */
export function didYouMean(word: string, names: Iterable<string>): string | undefined {
  const near = closest(word, names);
  return near === undefined ? undefined : `did you mean ${near}?`;
}

/** Levenshtein distance, with a transposition (etdc/etcd) counted as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
