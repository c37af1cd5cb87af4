/**
 * The comparison statistics against published values and against SciPy and statsmodels (Debian
 * python3-scipy, python3-statsmodels, installed by .ci/run; statsmodels for the Wilson and Newcombe
 * intervals) on random data made here, so the cases are not in the repository.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { Rng } from '../drivers/sim/rng.ts';
import { binomSf, boschlooBWorse, fisherBWorse, geometricMeanRatio, holm, mannWhitneyGreater, mcnemarBWorse, newcombeDiff, permutationMeanGreater, rmst, trialsToDetect, wilson } from '../analysis/stats.ts';
import { PYTHON } from './helpers.ts';

const close = (actual: number, expected: number, tol = 1e-6): boolean => Math.abs(actual - expected) <= tol;

test('reference values: Fisher and Boschloo one-sided (SciPy 1.17, tables [[a, n-a], [b, n-b]]), Wilson', (t) => {
  for (const [a, b, n, fisher, boschloo] of [[45, 38, 50, 0.05418, 0.03433], [90, 80, 100, 0.03671, 0.02449], [18, 13, 20, 0.06369, 0.03248]] as const) {
    t.true(close(fisherBWorse(a, n, b, n), fisher, 5e-6), `Fisher ${a}/${n} vs ${b}/${n}: ${fisherBWorse(a, n, b, n)}`);
    t.true(close(boschlooBWorse(a, n, b, n), boschloo, 5e-6), `Boschloo ${a}/${n} vs ${b}/${n}: ${boschlooBWorse(a, n, b, n)}`);
  }
  const w = wilson(45, 50);
  t.true(close(w.lo, 0.786, 5e-4) && close(w.hi, 0.957, 5e-4), JSON.stringify(w));
  const w20 = wilson(20, 20);
  t.true(close(w20.lo, 0.839, 5e-4) && w20.hi === 1, JSON.stringify(w20));
});

test('reference values: Newcombe hybrid score interval (Newcombe 1998, method 10: 56/70 vs 48/80 -> 0.0524 to 0.3339), Holm, sample size', (t) => {
  const d = newcombeDiff(48, 80, 56, 70);
  t.true(close(d.diff, 0.2, 1e-12));
  t.true(close(d.lo, 0.0524, 5e-5) && close(d.hi, 0.3339, 5e-5), JSON.stringify(d));
  t.deepEqual(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06]);
  // 0.9 -> 0.8, one-sided 5%, power 80%: the classic figure is 157 a group (no continuity correction).
  t.is(trialsToDetect(0.9, 0.8), 157);
  t.is(trialsToDetect(0.8, 0.9), undefined);
});

test('restricted mean time: without censoring before tau it is the mean of min(t, tau), with variance sum((t - mean)^2) / n^2', (t) => {
  const times = [3, 5, 5, 8, 12, 20, 20];
  const events = [true, true, true, true, true, false, false];
  const r = rmst(times, events, 20);
  const m = times.reduce((s, x) => s + x, 0) / times.length;
  t.true(close(r.rmst, m, 1e-12), `${r.rmst} vs ${m}`);
  t.true(close(r.variance, times.reduce((s, x) => s + (x - m) ** 2, 0) / times.length ** 2, 1e-12), `${r.variance}`);
});

const scipy = spawnSync(PYTHON, ['-c', 'import scipy.stats, statsmodels.stats.proportion'], { stdio: 'ignore' }).status === 0;

// Reads the cases as JSON on stdin and answers each with SciPy's value.
const PY = String.raw`
import json, sys
import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
out = []
for c in json.load(sys.stdin):
    k = c['kind']
    if k == 'fisher':
        out.append(stats.fisher_exact([[c['a'], c['nA'] - c['a']], [c['b'], c['nB'] - c['b']]], alternative='greater')[1])
    elif k == 'boschloo':
        out.append(stats.boschloo_exact([[c['a'], c['nA'] - c['a']], [c['b'], c['nB'] - c['b']]], alternative='greater').pvalue)
    elif k == 'binom':
        out.append(stats.binomtest(c['k'], c['n'], c['p'], alternative='greater').pvalue if c['n'] > 0 else 1.0)
    elif k == 'mwu':
        r = stats.mannwhitneyu(c['x'], c['y'], alternative='greater')
        out.append([float(r.statistic), float(r.pvalue)])
    elif k == 'perm':
        r = stats.permutation_test((c['x'], c['y']), lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis), vectorized=True, permutation_type='independent', alternative='greater', n_resamples=np.inf)
        out.append(float(r.pvalue))
    elif k == 'newcombe':
        lo, hi = confint_proportions_2indep(c['b'], c['nB'], c['a'], c['nA'], method='newcomb', compare='diff', alpha=0.05)
        out.append([float(lo), float(hi)])
    elif k == 'wilson':
        lo, hi = proportion_confint(c['k'], c['n'], alpha=0.05, method='wilson')
        out.append([float(lo), float(hi)])
    elif k == 'gmr':
        la, lb = np.log(c['x']), np.log(c['y'])
        va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
        df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
        d = lb.mean() - la.mean(); t = stats.t.ppf(0.975, df); se = np.sqrt(va + vb)
        out.append([float(np.exp(d)), float(np.exp(d - t * se)), float(np.exp(d + t * se))])
# SciPy answers NaN when a column of the table is empty (every trial passed, or every trial failed).
print(json.dumps(out).replace('NaN', 'null'))
`;

(scipy ? test : test.skip)(`agrees with SciPy and statsmodels to 1e-6 on random tables and samples${scipy ? '' : ' (skipped: /usr/bin/python3 lacks scipy or statsmodels; apt-get install python3-scipy python3-statsmodels)'}`, (t) => {
  const rng = new Rng(Date.now() % 1e9); // fresh cases every run; the seed is in any failure message
  const seedNote = `cases from Rng(${rng.seed})`;
  const int = (lo: number, hi: number): number => lo + Math.floor(rng.float() * (hi - lo + 1));
  const cases: { kind: string; [k: string]: unknown }[] = [];
  const ours: (number | number[])[] = [];
  for (let i = 0; i < 12; i++) {
    const nA = int(5, 45);
    const nB = int(5, 45);
    const a = int(0, nA);
    const b = int(0, nB);
    cases.push({ kind: 'fisher', a, nA, b, nB });
    ours.push(fisherBWorse(a, nA, b, nB));
    cases.push({ kind: 'boschloo', a, nA, b, nB });
    ours.push(boschlooBWorse(a, nA, b, nB));
    cases.push({ kind: 'newcombe', a, nA, b, nB });
    const nd = newcombeDiff(a, nA, b, nB);
    ours.push([nd.lo, nd.hi]);
    cases.push({ kind: 'wilson', k: a, n: nA });
    const w = wilson(a, nA);
    ours.push([w.lo, w.hi]);
    const m = int(0, 40);
    const k = int(0, m);
    cases.push({ kind: 'binom', k, n: m, p: 0.5 });
    ours.push(m === 0 ? 1 : mcnemarBWorse(k, m - k));
  }
  for (let i = 0; i < 12; i++) {
    // Some small samples without ties (exact), some with ties or larger (asymptotic).
    const tied = i % 3 === 0;
    const x = Array.from({ length: int(3, 25) }, () => (tied ? int(1, 8) : Math.round(rng.float() * 1e6) / 1e3 + 0.5));
    const y = Array.from({ length: int(3, 25) }, () => (tied ? int(1, 8) : Math.round(rng.float() * 1e6) / 1e3));
    cases.push({ kind: 'mwu', x, y });
    const r = mannWhitneyGreater(x, y);
    ours.push([r.u, r.pvalue]);
    const px = Array.from({ length: int(3, 7) }, () => int(0, 4));
    const py = Array.from({ length: int(3, 7) }, () => int(0, 5));
    cases.push({ kind: 'perm', x: px, y: py });
    ours.push(permutationMeanGreater(px, py)!);
    const gx = Array.from({ length: int(3, 20) }, () => 5 + rng.float() * 20);
    const gy = Array.from({ length: int(3, 20) }, () => 5 + rng.float() * 25);
    cases.push({ kind: 'gmr', x: gx, y: gy });
    const g = geometricMeanRatio(gx, gy)!;
    ours.push([g.ratio, g.lo, g.hi]);
  }
  const r = spawnSync(PYTHON, ['-c', PY], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 << 20 });
  t.is(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout) as (number | number[])[];
  cases.forEach((c, i) => {
    const o = [ours[i]!].flat();
    const s = [theirs[i]!].flat();
    if (c.kind === 'boschloo' && s[0] === null) {
      // Nothing passed or nothing failed in either build: no evidence either way, p = 1 (SciPy: NaN).
      t.is(o[0], 1, `boschloo ${JSON.stringify(c)}`);
      return;
    }
    o.forEach((v, j) => t.true(close(v, s[j]!), `${c.kind} ${JSON.stringify(c)}: ours ${v}, SciPy ${s[j]} (${seedNote})`));
  });
  t.true(binomSf(0, 5, 0.5) === 1);
});
