/** The soak benchmark's arithmetic: percentiles, trends, and the verdict. Pure functions. */

export const MB = 1024 * 1024;

/** Thresholds of the verdict (see docs/benchmarks.md, "Soak"). */
export const SOAK_LIMITS = {
  /** Least-squares growth of heap used after the warm-up, MB per 10 minutes. */
  heapMbPer10Min: 5,
  /** Least-squares growth of RSS after the warm-up, MB per 10 minutes. */
  rssMbPer10Min: 20,
  /** Worst 10 s window's event-loop delay p99 after the warm-up (prom-client's figure, which
   * includes its 10 ms sampling interval: an idle loop reads about 10.2 ms). */
  eventLoopP99Ms: 100,
  /** A trend is judged only over at least this much time after the warm-up... */
  minTrendSeconds: 300,
  /** ...and at least this many samples (full collections) in it. */
  minTrendSamples: 3,
} as const;

/** The value at percentile `p` (0..100) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Least-squares slope of `ys` over `xs` (units of y per unit of x); NaN with fewer than 2 points. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] ?? 0;
    sy += ys[i] ?? 0;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] ?? 0) - mx;
    num += dx * ((ys[i] ?? 0) - my);
    den += dx * dx;
  }
  return den === 0 ? NaN : num / den;
}

/** The trend of one memory series: slope per 10 minutes and the first and last thirds' medians. */
export interface Trend {
  samples: number;
  mbPer10Min: number;
  firstThirdMb: number;
  lastThirdMb: number;
  limitMbPer10Min: number;
  /** `null`: not judged (too short a span after the warm-up). */
  ok: boolean | null;
}

/**
 * Growth of a series sampled at `seconds`: a failure needs both signs, the least-squares slope
 * above the limit and the last third's median above the first third's (one late GC cycle can
 * tilt a slope; a leak moves both).
 */
export function trend(
  seconds: readonly number[],
  bytes: readonly number[],
  limitMbPer10Min: number,
): Trend {
  const mb = bytes.map((b) => b / MB);
  const third = Math.floor(mb.length / 3);
  const firstThirdMb = third > 0 ? median(mb.slice(0, third)) : NaN;
  const lastThirdMb = third > 0 ? median(mb.slice(mb.length - third)) : NaN;
  const mbPer10Min = slope(seconds, mb) * 600;
  const span = (seconds.at(-1) ?? 0) - (seconds[0] ?? 0);
  const judged =
    span >= SOAK_LIMITS.minTrendSeconds &&
    mb.length >= SOAK_LIMITS.minTrendSamples &&
    Number.isFinite(mbPer10Min);
  const growing = mbPer10Min > limitMbPer10Min && lastThirdMb > firstThirdMb;
  return {
    samples: mb.length,
    mbPer10Min,
    firstThirdMb,
    lastThirdMb,
    limitMbPer10Min,
    ok: judged ? !growing : null,
  };
}

export interface ErrorCounts {
  /** Answers with a 5xx status. */
  serverErrors: number;
  /** Answers with a status the operation does not expect (a 401 on a live token, a 429...). */
  unexpected: number;
  /** Connections refused or reset, sockets closed without an answer. */
  connection: number;
  /** No answer within the client's timeout. */
  timeouts: number;
  /** Operations not started: every virtual user of their kind still had one in flight (the
   * answers were slower than users ÷ rate, some 3 s for operators). */
  notSent: number;
}

/** Every error of every kind. */
export function errorTotal(e: ErrorCounts): number {
  return e.serverErrors + e.unexpected + e.connection + e.timeouts + e.notSent;
}

export interface Verdict {
  ok: boolean;
  errors: { ok: boolean; total: number } & ErrorCounts;
  heap: Trend;
  rss: Trend;
  /** `ok` null: not judged (no window after the warm-up). */
  eventLoop: { ok: boolean | null; worstP99Ms: number; medianP99Ms: number; limitMs: number };
  serverAlive: boolean;
  reasons: string[];
}

export function verdict(input: {
  errors: ErrorCounts;
  heap: Trend;
  rss: Trend;
  eventLoopP99Ms: readonly number[];
  serverAlive: boolean;
}): Verdict {
  const { errors, heap, rss, serverAlive } = input;
  const total = errorTotal(errors);
  const worstP99Ms = input.eventLoopP99Ms.length ? Math.max(...input.eventLoopP99Ms) : NaN;
  const medianP99Ms = median(input.eventLoopP99Ms);
  const loopOk = Number.isFinite(worstP99Ms) ? worstP99Ms <= SOAK_LIMITS.eventLoopP99Ms : null;
  const reasons: string[] = [];
  if (total > 0) reasons.push(`${String(total)} errors`);
  if (heap.ok === false) reasons.push('heap used grows');
  if (rss.ok === false) reasons.push('RSS grows');
  if (loopOk === false) reasons.push(`event-loop delay p99 reached ${worstP99Ms.toFixed(1)} ms`);
  if (!serverAlive) reasons.push('the server process died');
  return {
    ok: reasons.length === 0,
    errors: { ok: total === 0, total, ...errors },
    heap,
    rss,
    eventLoop: { ok: loopOk, worstP99Ms, medianP99Ms, limitMs: SOAK_LIMITS.eventLoopP99Ms },
    serverAlive,
    reasons,
  };
}
