/**
 * Timing side channels: do two code paths (an existing versus an unknown account, say) answer in
 * distinguishably different times? Measured interleaved in random order (drift and load hit both
 * alike), compared with statistics that outliers cannot move much: the Mann-Whitney U statistic as
 * the probability that one try of A is slower than one of B (0.5: indistinguishable), and a
 * bootstrap confidence interval of the difference of medians.
 */

/** A small seeded PRNG (mulberry32), so a failing comparison can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * P(a > b) + P(a = b) / 2 for one try of each: the Mann-Whitney U of `a` over `n·m` (the "common
 * language effect size", or AUC). 0.5 when the two are alike; 0.9 when a single try tells them
 * apart nine times in ten.
 */
export function probabilityOfSuperiority(a: readonly number[], b: readonly number[]): number {
  const all = [...a.map((v) => ({ v, a: true })), ...b.map((v) => ({ v, a: false }))].sort(
    (x, y) => x.v - y.v,
  );
  let rankSumA = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j]?.v === all[i]?.v) j++;
    const rank = (i + 1 + j) / 2; // ties share their mean rank
    for (let k = i; k < j; k++) if (all[k]?.a) rankSumA += rank;
    i = j;
  }
  const u = rankSumA - (a.length * (a.length + 1)) / 2;
  return u / (a.length * b.length);
}

export function median(values: readonly number[] | Float64Array): number {
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The 95% percentile-bootstrap interval of median(a) − median(b). */
export function medianDifferenceInterval(
  a: readonly number[],
  b: readonly number[],
  options: { resamples?: number; seed?: number } = {},
): [number, number] {
  const random = seededRandom(options.seed ?? 12_345);
  const resamples = options.resamples ?? 1_000;
  const draw = (xs: readonly number[]) => {
    const sample = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) sample[i] = xs[Math.floor(random() * xs.length)] as number;
    return median(sample);
  };
  const diffs = Array.from({ length: resamples }, () => draw(a) - draw(b)).sort((x, y) => x - y);
  return [
    diffs[Math.floor(resamples * 0.025)] as number,
    diffs[Math.ceil(resamples * 0.975) - 1] as number,
  ];
}

export interface TimingComparison {
  /** Tries of each path kept (after the warm-up). */
  n: number;
  medianA: number;
  medianB: number;
  /** P(a try of A is slower than a try of B): 0.5 indistinguishable. */
  superiority: number;
  /** 95% bootstrap interval of median(A) − median(B), in the unit of the samples. */
  interval: [number, number];
  /** Whether the two paths tell themselves apart (see `compareTimings`). */
  differ: boolean;
}

/**
 * The largest departure from 0.5 of P(A > B) accepted as "alike": a single try then tells the two
 * paths apart at most 60% of the time (the defect was 75–97%). Under the null hypothesis this is
 * 3.5 standard errors of the statistic with 200 tries of each (4.4 with 250), and the median
 * interval must lie beyond `MIN_GAP_MS` too: a fair comparison practically never fails by chance, while
 * interleaving keeps a busy machine's load from falling on one path more than the other.
 */
export const SUPERIORITY_TOLERANCE = 0.1;

/**
 * The smallest gap between the medians (ms) that counts: a difference that is surely below it is
 * the cost of the rows a known account writes (its row lock, counter and event) and no more.
 */
export const MIN_GAP_MS = 0.5;

/**
 * Compares two timing samples. They differ when one try of A is slower than one of B in more than
 * `0.5 + tolerance` (or fewer than `0.5 − tolerance`) of pairs AND the bootstrap interval of the
 * difference of medians lies wholly beyond `minGapMs` (either way): an effect that is both large
 * and certain.
 */
export function compareTimings(
  a: readonly number[],
  b: readonly number[],
  options: { tolerance?: number; minGapMs?: number; seed?: number } = {},
): TimingComparison {
  const superiority = probabilityOfSuperiority(a, b);
  const interval = medianDifferenceInterval(a, b, { seed: options.seed });
  const tolerance = options.tolerance ?? SUPERIORITY_TOLERANCE;
  const gap = options.minGapMs ?? MIN_GAP_MS;
  const large = Math.abs(superiority - 0.5) > tolerance;
  const certain = interval[0] > gap || interval[1] < -gap;
  return {
    n: Math.min(a.length, b.length),
    medianA: median(a),
    medianB: median(b),
    superiority,
    interval,
    differ: large && certain,
  };
}

/**
 * Times two paths interleaved: each round runs A and B once each in a random order; the first
 * `warmUp` rounds are dropped (caches, JIT, pool connections). Milliseconds per try.
 */
export async function timeInterleaved(
  runA: (i: number) => Promise<unknown>,
  runB: (i: number) => Promise<unknown>,
  options: { rounds: number; warmUp: number; seed?: number },
): Promise<{ a: number[]; b: number[] }> {
  const random = seededRandom(options.seed ?? 7);
  const a: number[] = [];
  const b: number[] = [];
  const time = async (run: (i: number) => Promise<unknown>, i: number) => {
    const start = process.hrtime.bigint();
    await run(i);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  for (let i = 0; i < options.warmUp + options.rounds; i++) {
    let ta: number;
    let tb: number;
    if (random() < 0.5) {
      ta = await time(runA, i);
      tb = await time(runB, i);
    } else {
      tb = await time(runB, i);
      ta = await time(runA, i);
    }
    if (i >= options.warmUp) {
      a.push(ta);
      b.push(tb);
    }
  }
  return { a, b };
}

/** One line for a test's output: the figures a reader needs to judge a comparison. */
export function describeComparison(label: string, c: TimingComparison): string {
  const ms = (v: number) => v.toFixed(3);
  return `${label}: n=${String(c.n)} median A ${ms(c.medianA)} ms, B ${ms(c.medianB)} ms, P(A>B)=${c.superiority.toFixed(3)}, median diff 95% CI [${ms(c.interval[0])}, ${ms(c.interval[1])}] ms: ${c.differ ? 'DIFFER' : 'alike'}`;
}
