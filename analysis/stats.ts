/**
 * The statistics of `dexhil compare`, from their published definitions. Exact tests are exact:
 * tail sums of discrete distributions, no normal approximations. Distributions that are not
 * discrete (normal, Student t) come from jStat.
 *
 * Conventions: `a` of `nA` trials passed on build A (the baseline), `b` of `nB` on build B (the
 * candidate); "B worse" is the one-sided alternative that B's success rate is lower.
 */
import jstat from 'jstat';
import { wilson } from '../harness/stats.ts';

export { wilson };

const { jStat } = jstat; // a CommonJS (UMD) module

/** Standard normal quantile. */
export function zQuantile(p: number): number {
  return jStat.normal.inv(p, 0, 1);
}

/** Standard normal upper tail P(Z > z), accurate far into the tail. */
export function normalSf(z: number): number {
  return 0.5 * jStat.erfc(z / Math.SQRT2);
}

export function logChoose(n: number, k: number): number {
  return jStat.gammaln(n + 1) - jStat.gammaln(k + 1) - jStat.gammaln(n - k + 1);
}

/**
 * The hypergeometric distribution of the count `y` drawn from a group of `nGroup` among `total`
 * items of which `marked` are marked: P(y = lo..hi) for y in [lo, hi]. Computed by the ratio
 * recurrence from the mode outwards and normalised, so it needs no factorials and keeps full
 * relative precision (tables with equal tail probabilities come out equal to ~1e-15).
 */
function hypergeomPmf(total: number, marked: number, nGroup: number): { lo: number; pmf: Float64Array } {
  const lo = Math.max(0, marked - (total - nGroup));
  const hi = Math.min(marked, nGroup);
  const w = new Float64Array(hi - lo + 1);
  const mode = Math.min(hi, Math.max(lo, Math.floor(((marked + 1) * (nGroup + 1)) / (total + 2))));
  w[mode - lo] = 1;
  // P(y+1)/P(y) = (nGroup - y)(marked - y) / ((y + 1)(total - nGroup - marked + y + 1))
  for (let y = mode; y < hi; y++) w[y + 1 - lo] = (w[y - lo]! * (nGroup - y) * (marked - y)) / ((y + 1) * (total - nGroup - marked + y + 1));
  for (let y = mode; y > lo; y--) w[y - 1 - lo] = (w[y - lo]! * y * (total - nGroup - marked + y)) / ((nGroup - y + 1) * (marked - y + 1));
  let sum = 0;
  for (const v of w) sum += v;
  for (let i = 0; i < w.length; i++) w[i] = w[i]! / sum;
  return { lo, pmf: w };
}

/** P(Y <= y) for the hypergeometric count above. */
export function hypergeomCdf(y: number, total: number, marked: number, nGroup: number): number {
  const { lo, pmf } = hypergeomPmf(total, marked, nGroup);
  let p = 0;
  for (let i = 0; i <= y - lo && i < pmf.length; i++) p += pmf[i]!;
  return Math.min(1, p);
}

/**
 * Fisher's exact test, one-sided, "A better than B" (B worse): P(A's passes >= a) given all
 * margins; the table [[a, nA-a], [b, nB-b]] with alternative `greater`, as SciPy's fisher_exact.
 */
export function fisherBWorse(a: number, nA: number, b: number, nB: number): number {
  // A's passes >= a  <=>  A's failures <= nA - a, among the (nA-a)+(nB-b) failures.
  return hypergeomCdf(nA - a, nA + nB, nA, nA - a + (nB - b));
}

/**
 * Boschloo's exact test, one-sided, for a 2x2 table whose columns are the two binomial samples
 * (SciPy's `boschloo_exact(table, alternative='greater')`): the statistic is Fisher's one-sided
 * p-value, and the p-value is the largest probability, over the common success probability pi,
 * of a table at least as extreme. The maximum is found on a grid of 2,000 points, each local
 * maximum then refined by golden-section search to 1e-12 in pi.
 */
export function boschlooGreater(table: readonly [readonly [number, number], readonly [number, number]]): { statistic: number; pvalue: number } {
  const [[t00, t01], [t10, t11]] = table;
  const n1 = t00 + t10;
  const n2 = t01 + t11;
  const total = n1 + n2;
  // For each row-0 total s, the hypergeometric law of x2 (row 0 of column 2), and the Fisher
  // p-value P(X2 <= x2 | s) of every table (x1 = s - x2, x2).
  const cdfs: { lo: number; cdf: Float64Array; pmf: Float64Array }[] = [];
  for (let s = 0; s <= total; s++) {
    const { lo, pmf } = hypergeomPmf(total, s, n2);
    const cdf = new Float64Array(pmf.length);
    let acc = 0;
    for (let i = 0; i < pmf.length; i++) cdf[i] = acc += pmf[i]!;
    cdfs.push({ lo, cdf, pmf });
  }
  const observed = cdfs[t00 + t01]!;
  const statistic = Math.min(1, observed.cdf[t01 - observed.lo]!);
  const bound = statistic * (1 + 1e-13); // SciPy's tolerance for tables as extreme as the observed one
  // q[s]: probability, given s, of the tables at least as extreme; the p-value at pi is then
  // sum_s q[s] * Binomial(s; total, pi), since C(n1,x1) C(n2,x2) = C(total,s) * hypergeom(x2 | s).
  const q = new Float64Array(total + 1);
  for (let s = 0; s <= total; s++) {
    const { cdf, pmf } = cdfs[s]!;
    let sum = 0;
    for (let i = 0; i < pmf.length; i++) if (Math.min(1, cdf[i]!) <= bound) sum += pmf[i]!;
    q[s] = sum;
  }
  const logC = Array.from({ length: total + 1 }, (_, s) => logChoose(total, s));
  const at = (pi: number): number => {
    if (pi <= 0) return q[0]!;
    if (pi >= 1) return q[total]!;
    const lp = Math.log(pi);
    const lq = Math.log1p(-pi);
    let p = 0;
    for (let s = 0; s <= total; s++) if (q[s]! > 0) p += q[s]! * Math.exp(logC[s]! + s * lp + (total - s) * lq);
    return p;
  };
  const GRID = 2000;
  const f = Array.from({ length: GRID + 1 }, (_, i) => at(i / GRID));
  let best = Math.max(...f);
  for (let i = 1; i < GRID; i++) {
    if (f[i]! >= f[i - 1]! && f[i]! >= f[i + 1]!) best = Math.max(best, goldenMax(at, (i - 1) / GRID, (i + 1) / GRID));
  }
  return { statistic, pvalue: Math.min(1, Math.max(0, best)) };
}

function goldenMax(f: (x: number) => number, lo: number, hi: number): number {
  const r = (Math.sqrt(5) - 1) / 2;
  let a = lo;
  let b = hi;
  let c = b - r * (b - a);
  let d = a + r * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-12) {
    if (fc > fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - r * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + r * (b - a);
      fd = f(d);
    }
  }
  return Math.max(fc, fd, f((a + b) / 2));
}

/** Boschloo, one-sided "B worse", on the table [[a, nA-a], [b, nB-b]] as SciPy takes it. */
export function boschlooBWorse(a: number, nA: number, b: number, nB: number): number {
  return boschlooGreater([[a, nA - a], [b, nB - b]]).pvalue;
}

/** P(X >= k) for X ~ Binomial(n, p), exact (SciPy's binomtest(k, n, p, 'greater')). */
export function binomSf(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  let sum = 0;
  for (let i = k; i <= n; i++) sum += Math.exp(logChoose(n, i) + i * Math.log(p) + (n - i) * Math.log1p(-p));
  return Math.min(1, sum);
}

/**
 * Exact McNemar test on paired trials, one-sided "B worse": of the discordant pairs, `bWorse`
 * passed on A only and `bBetter` on B only; under no difference each is A-only with probability 1/2.
 */
export function mcnemarBWorse(bWorse: number, bBetter: number): number {
  return binomSf(bWorse, bWorse + bBetter, 0.5);
}

/** Newcombe's hybrid score interval (method 10) for pB - pA, from Wilson intervals at `conf`. */
export function newcombeDiff(a: number, nA: number, b: number, nB: number, conf = 0.95): { diff: number; lo: number; hi: number } {
  const z = zQuantile(1 - (1 - conf) / 2);
  const pA = a / nA;
  const pB = b / nB;
  const wA = wilson(a, nA, z);
  const wB = wilson(b, nB, z);
  const diff = pB - pA;
  return {
    diff,
    lo: diff - Math.sqrt((pB - wB.lo) ** 2 + (wA.hi - pA) ** 2),
    hi: diff + Math.sqrt((wB.hi - pB) ** 2 + (pA - wA.lo) ** 2),
  };
}

/** Holm's step-down adjustment of p-values (returned in the input order). */
export function holm(pvalues: readonly number[]): number[] {
  const m = pvalues.length;
  const order = pvalues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0]);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/** Midranks (1-based) of the pooled values, and the tie term sum(t^3 - t). */
function midranks(values: readonly number[]): { ranks: number[]; tieTerm: number } {
  const idx = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const ranks = new Array<number>(values.length);
  let tieTerm = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    const r = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[idx[k]![1]] = r;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  return { ranks, tieTerm };
}

/** Number of arrangements giving each U for samples of sizes m and n (U of the first sample). */
function mwuCounts(m: number, n: number): Float64Array {
  // f[i][j][u] by the recurrence f(u; i, j) = f(u - j; i - 1, j) + f(u; i, j - 1).
  let prev: Float64Array[] = Array.from({ length: n + 1 }, () => Float64Array.of(1)); // i = 0
  for (let i = 1; i <= m; i++) {
    const cur: Float64Array[] = [Float64Array.of(1)]; // j = 0: U = 0 only
    for (let j = 1; j <= n; j++) {
      const f = new Float64Array(i * j + 1);
      const left = prev[j]!; // (i - 1, j), shifted by j
      for (let u = 0; u < left.length; u++) f[u + j]! += left[u]!;
      const down = cur[j - 1]!; // (i, j - 1)
      for (let u = 0; u < down.length; u++) f[u]! += down[u]!;
      cur.push(f);
    }
    prev = cur;
  }
  return prev[n]!;
}

/**
 * Mann-Whitney U test, one-sided: are `x` values larger than `y` values? As SciPy's
 * mannwhitneyu(x, y, alternative='greater', method='auto'): exact when a sample has at most 8
 * values and there are no ties, otherwise the normal approximation with tie and continuity
 * corrections. Returns U of `x` and the p-value.
 */
export function mannWhitneyGreater(x: readonly number[], y: readonly number[]): { u: number; pvalue: number; method: 'exact' | 'asymptotic' } {
  const n1 = x.length;
  const n2 = y.length;
  const { ranks, tieTerm } = midranks([...x, ...y]);
  const r1 = ranks.slice(0, n1).reduce((s, r) => s + r, 0);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  if ((n1 <= 8 || n2 <= 8) && tieTerm === 0) {
    const counts = mwuCounts(n1, n2);
    let tail = 0;
    let all = 0;
    for (let k = 0; k < counts.length; k++) {
      all += counts[k]!;
      if (k >= u) tail += counts[k]!;
    }
    return { u, pvalue: Math.min(1, tail / all), method: 'exact' };
  }
  const n = n1 + n2;
  const s = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const z = (u - (n1 * n2) / 2 - 0.5) / s;
  return { u, pvalue: Math.min(1, Math.max(0, normalSf(z))), method: 'asymptotic' };
}

function mean(v: readonly number[]): number {
  return v.reduce((s, x) => s + x, 0) / v.length;
}

function sampleVar(v: readonly number[]): number {
  const m = mean(v);
  return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
}

/**
 * Ratio of geometric means of B to A with a Welch t interval on the logs: exp of the difference of
 * mean logs, and exp of its interval with Welch-Satterthwaite degrees of freedom.
 */
export function geometricMeanRatio(aValues: readonly number[], bValues: readonly number[], conf = 0.95): { ratio: number; lo: number; hi: number; df: number } | undefined {
  if (aValues.length < 2 || bValues.length < 2 || [...aValues, ...bValues].some((v) => !(v > 0))) return undefined;
  const la = aValues.map(Math.log);
  const lb = bValues.map(Math.log);
  const d = mean(lb) - mean(la);
  const va = sampleVar(la) / la.length;
  const vb = sampleVar(lb) / lb.length;
  const se = Math.sqrt(va + vb);
  if (se === 0) return { ratio: Math.exp(d), lo: Math.exp(d), hi: Math.exp(d), df: Infinity };
  const df = (va + vb) ** 2 / (va ** 2 / (la.length - 1) + vb ** 2 / (lb.length - 1));
  const t = jStat.studentt.inv(1 - (1 - conf) / 2, df);
  return { ratio: Math.exp(d), lo: Math.exp(d - t * se), hi: Math.exp(d + t * se), df };
}

/**
 * Exact permutation test on the difference of means, one-sided "B larger", for integer-valued
 * data (e.g. corrections per trial): P(sum of B's values >= observed) over all ways to choose which
 * nB of the pooled values are B's, by dynamic programming over (values chosen, their sum).
 * Returns undefined when the table would be too large to count exactly (then use a sampled test).
 */
export function permutationMeanGreater(aValues: readonly number[], bValues: readonly number[]): number | undefined {
  const pooled = [...aValues, ...bValues];
  if (pooled.some((v) => !Number.isInteger(v) || v < 0)) return undefined;
  const k = bValues.length;
  const maxSum = pooled.reduce((s, v) => s + v, 0);
  if (pooled.length * (k + 1) * (maxSum + 1) > 3e8) return undefined;
  // p[c][s]: among the first i values, the share of size-c subsets whose sum is s. A step with
  // value v: p'[c][s] = p[c][s] (i - c) / i + p[c - 1][s - v] c / i (the subset counts divided
  // by C(i, c), so nothing overflows).
  const p: Float64Array[] = Array.from({ length: k + 1 }, () => new Float64Array(maxSum + 1));
  p[0]![0] = 1;
  let reach = 0; // largest sum reachable so far
  pooled.forEach((v, index) => {
    const i = index + 1;
    reach += v;
    for (let c = Math.min(k, i); c >= 1; c--) {
      const row = p[c]!;
      const below = p[c - 1]!;
      for (let s = reach; s >= 0; s--) row[s] = (row[s]! * (i - c) + (s >= v ? below[s - v]! * c : 0)) / i;
    }
  });
  const observed = bValues.reduce((s, v) => s + v, 0);
  let tail = 0;
  for (let s = observed; s <= maxSum; s++) tail += p[k]![s]!;
  return Math.min(1, tail);
}

/**
 * Restricted mean time to success up to `tau`, by Kaplan-Meier: successes are events at their
 * time, other trials are censored at their time (at `tau` when they ran to the timeout). With its
 * variance by the usual formula sum A_j^2 d_j / (Y_j (Y_j - d_j)) (terms with Y_j = d_j are 0).
 */
export function rmst(times: readonly number[], events: readonly boolean[], tau: number): { rmst: number; variance: number } {
  const rows = times.map((t, i) => ({ t: Math.min(t, tau), e: events[i]! && times[i]! <= tau })).sort((x, y) => x.t - y.t);
  const eventTimes: { t: number; d: number; y: number }[] = [];
  let atRisk = rows.length;
  for (let i = 0; i < rows.length; ) {
    let j = i;
    let d = 0;
    while (j < rows.length && rows[j]!.t === rows[i]!.t) {
      if (rows[j]!.e) d++;
      j++;
    }
    if (d > 0) eventTimes.push({ t: rows[i]!.t, d, y: atRisk });
    atRisk -= j - i;
    i = j;
  }
  // Survival after each event time, and the area under it from each event time to tau.
  const surv: number[] = [];
  let s = 1;
  for (const et of eventTimes) surv.push((s *= 1 - et.d / et.y));
  let area = 0;
  const areaFrom = new Array<number>(eventTimes.length);
  for (let j = eventTimes.length - 1; j >= 0; j--) {
    const next = j + 1 < eventTimes.length ? eventTimes[j + 1]!.t : tau;
    area += surv[j]! * (next - eventTimes[j]!.t);
    areaFrom[j] = area;
  }
  const total = area + (eventTimes.length > 0 ? eventTimes[0]!.t : tau);
  let variance = 0;
  eventTimes.forEach((et, j) => {
    if (et.y > et.d) variance += (areaFrom[j]! ** 2 * et.d) / (et.y * (et.y - et.d));
  });
  return { rmst: total, variance };
}

/**
 * Trials per build for a one-sided two-proportion test at level `alpha` to detect pA -> pB with
 * `power` (normal approximation, no continuity correction). Undefined when pB >= pA.
 */
export function trialsToDetect(pA: number, pB: number, alpha = 0.05, power = 0.8): number | undefined {
  if (!(pA > pB)) return undefined;
  const za = zQuantile(1 - alpha);
  const zb = zQuantile(power);
  const pbar = (pA + pB) / 2;
  const n = (za * Math.sqrt(2 * pbar * (1 - pbar)) + zb * Math.sqrt(pA * (1 - pA) + pB * (1 - pB))) ** 2 / (pA - pB) ** 2;
  return Math.ceil(n);
}
