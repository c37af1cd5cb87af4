/**
 * A comparison as text for the terminal, Markdown for pull requests, CSV and JSON for pipelines,
 * and a self-contained HTML page (`compare --html`, drawn like report.html).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { toCsv } from '../reports/csv-recorder.ts';
import { esc, page, table } from '../reports/html.ts';
import { countBy } from '../reports/run-data.ts';
import { fmtP, pct, type Comparison, type ScenarioComparison } from './compare.ts';

const pts = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}` : '-');
const rate = (b: { passes: number; judged: number; rate: number; lo: number; hi: number }): string =>
  `${pct(b.rate)} (${pct(b.lo)}-${pct(b.hi)}) ${b.passes}/${b.judged}`;
const num = (v: number | undefined, d = 2): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

function pairedCell(s: ScenarioComparison): string {
  return s.paired === undefined ? '-' : `${fmtP(s.paired.mcnemarP)} (${s.paired.bWorse} vs ${s.paired.bBetter} of ${s.paired.pairs})`;
}

/** The secondary metrics of a scenario, one line each. */
function details(s: ScenarioComparison): string[] {
  const lines = [
    `corrections per trial ${num(s.a.correctionsPerTrial)} -> ${num(s.b.correctionsPerTrial)} (exact permutation p for B more: ${fmtP(s.corrections.pvalue)})`,
    s.time === undefined
      ? 'completion time of successes: too few successful trials to compare'
      : `completion time of successes: geometric mean ${num(s.a.geoMeanS, 1)} s -> ${num(s.b.geoMeanS, 1)} s, ratio ${num(s.time.ratio, 3)} (95% CI ${num(s.time.lo, 3)}-${num(s.time.hi, 3)}), Mann-Whitney p for B slower ${fmtP(s.time.mannWhitneyP)}`,
    `time to success, restricted to the ${num(s.rmst.tauS, 0)} s timeout: ${num(s.a.rmstS, 1)} s -> ${num(s.b.rmstS, 1)} s (${s.rmst.diffS >= 0 ? '+' : ''}${num(s.rmst.diffS, 1)} s, 95% CI ${num(s.rmst.lo, 1)} to ${num(s.rmst.hi, 1)})`,
    `stage reach: ${s.stages.map((st, k) => `${st} ${pct(s.a.reach[k]!)}->${pct(s.b.reach[k]!)}`).join(', ')}`,
  ];
  if (s.a.unjudged + s.b.unjudged > 0) lines.push(`not judged (error, timeout, aborted): ${s.a.unjudged} in A, ${s.b.unjudged} in B`);
  return lines;
}

export function formatCompareText(c: Comparison): string {
  const head = ['scenario', 'verdict', 'A success (95% CI)', 'B success (95% CI)', 'B-A pts (95% CI)', 'Boschloo p', 'Holm p', 'Fisher p', 'McNemar p (pairs)'];
  const rows = c.scenarios.map((s) => [s.scenario, s.verdict, rate(s.a), rate(s.b), `${pts(s.diff.diff)} (${pts(s.diff.lo)} to ${pts(s.diff.hi)})`, fmtP(s.boschlooP), fmtP(s.holmP), fmtP(s.fisherP), pairedCell(s)]);
  rows.push(['overall', '', rate(c.overall.a), rate(c.overall.b), `${pts(c.overall.diff.diff)} (${pts(c.overall.diff.lo)} to ${pts(c.overall.diff.hi)})`, '', '', '', '']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [`A (baseline):  ${c.a.label}`, `B (candidate): ${c.b.label}`, '', line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const s of c.scenarios) {
    out.push(`${s.scenario}: ${s.verdict}: ${s.reason}`);
    for (const d of details(s)) out.push(`  ${d}`);
  }
  for (const sk of c.skipped) out.push(`${sk.scenario}: not compared (${sk.reason})`);
  out.push('', ...c.notes.map((n) => `note: ${n}`));
  out.push(c.regression ? `REGRESSION in ${c.scenarios.filter((s) => s.verdict === 'REGRESSION').map((s) => s.scenario).join(', ')}` : 'no regression');
  return out.join('\n');
}

const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/[<>]/g, (ch) => (ch === '<' ? '&lt;' : '&gt;'));

export function formatCompareMarkdown(c: Comparison): string {
  const out = [
    `# dexhil compare: ${c.regression ? 'REGRESSION' : 'no regression'}`,
    '',
    `- A (baseline): \`${mdCell(c.a.label)}\``,
    `- B (candidate): \`${mdCell(c.b.label)}\``,
    '',
    '| scenario | verdict | A success (95% CI) | B success (95% CI) | B-A pts (95% CI) | Boschloo p | Holm p | Fisher p | McNemar p (pairs) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...c.scenarios.map((s) => `| ${mdCell(s.scenario)} | **${s.verdict}** | ${rate(s.a)} | ${rate(s.b)} | ${pts(s.diff.diff)} (${pts(s.diff.lo)} to ${pts(s.diff.hi)}) | ${fmtP(s.boschlooP)} | ${fmtP(s.holmP)} | ${fmtP(s.fisherP)} | ${pairedCell(s)} |`),
    `| overall | | ${rate(c.overall.a)} | ${rate(c.overall.b)} | ${pts(c.overall.diff.diff)} (${pts(c.overall.diff.lo)} to ${pts(c.overall.diff.hi)}) | | | | |`,
    '',
  ];
  for (const s of c.scenarios) {
    out.push(`## ${mdCell(s.scenario)}: ${s.verdict}`, '', mdCell(s.reason), '', ...details(s).map((d) => `- ${mdCell(d)}`), '');
  }
  for (const sk of c.skipped) out.push(`- ${mdCell(sk.scenario)}: not compared (${mdCell(sk.reason)})`);
  out.push(...c.notes.map((n) => `> ${mdCell(n)}`), '');
  return out.join('\n');
}

export const COMPARE_COLUMNS = [
  'scenario', 'scenario_version', 'verdict', 'a_judged', 'a_passes', 'a_rate', 'a_lo', 'a_hi', 'b_judged', 'b_passes', 'b_rate', 'b_lo', 'b_hi',
  'diff', 'diff_lo', 'diff_hi', 'boschloo_p', 'holm_p', 'fisher_p', 'boschloo_better_p', 'holm_better_p', 'pairs', 'pairs_b_worse',
  'pairs_b_better', 'mcnemar_p', 'corrections_a', 'corrections_b', 'corrections_p', 'time_ratio', 'time_ratio_lo', 'time_ratio_hi',
  'mann_whitney_p', 'rmst_a_s', 'rmst_b_s', 'rmst_diff_s', 'rmst_diff_lo', 'rmst_diff_hi', 'tau_s', 'trials_needed', 'reason',
] as const;

export function compareCsv(c: Comparison): string {
  const n = (v: number | undefined): string | number => (v === undefined || !Number.isFinite(v) ? '' : Number(v.toPrecision(8)));
  const rows = c.scenarios.map((s) => [
    s.scenario, s.version, s.verdict, s.a.judged, s.a.passes, n(s.a.rate), n(s.a.lo), n(s.a.hi), s.b.judged, s.b.passes, n(s.b.rate), n(s.b.lo), n(s.b.hi),
    n(s.diff.diff), n(s.diff.lo), n(s.diff.hi), n(s.boschlooP), n(s.holmP), n(s.fisherP), n(s.boschlooBetterP), n(s.holmBetterP),
    s.paired?.pairs ?? '', s.paired?.bWorse ?? '', s.paired?.bBetter ?? '', n(s.paired?.mcnemarP), n(s.a.correctionsPerTrial), n(s.b.correctionsPerTrial),
    n(s.corrections.pvalue), n(s.time?.ratio), n(s.time?.lo), n(s.time?.hi), n(s.time?.mannWhitneyP), n(s.a.rmstS), n(s.b.rmstS), n(s.rmst.diffS),
    n(s.rmst.lo), n(s.rmst.hi), n(s.rmst.tauS), s.trialsNeeded ?? '', s.reason,
  ]);
  const o = c.overall;
  rows.push(['overall', '', c.regression ? 'REGRESSION' : '', o.a.judged, o.a.passes, n(o.a.rate), n(o.a.lo), n(o.a.hi), o.b.judged, o.b.passes, n(o.b.rate), n(o.b.lo), n(o.b.hi), n(o.diff.diff), n(o.diff.lo), n(o.diff.hi), ...new Array<string>(COMPARE_COLUMNS.length - 16).fill('')]);
  return toCsv([[...COMPARE_COLUMNS], ...rows]);
}

/** Writes compare.md, compare.csv and compare.json into `dir`; returns the paths. */
export function writeCompareFiles(c: Comparison, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = { 'compare.md': formatCompareMarkdown(c), 'compare.csv': compareCsv(c), 'compare.json': JSON.stringify(c, null, 2) + '\n' };
  return Object.entries(files).map(([name, text]) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  });
}

/** The compare.html text: both builds side by side, verdicts, intervals and trials needed. */
export function compareReportHtml(c: Comparison): string {
  const rows = c.scenarios.map((s) => [
    s.scenario,
    s.verdict,
    rate(s.a),
    rate(s.b),
    `${pts(s.diff.diff)} [${pts(s.diff.lo)}, ${pts(s.diff.hi)}]`,
    fmtP(s.holmP),
    fmtP(s.fisherP),
    pairedCell(s),
    `${num(s.a.correctionsPerTrial)} / ${num(s.b.correctionsPerTrial)} (p ${fmtP(s.corrections.pvalue)})`,
    s.time === undefined ? '-' : `${num(s.time.ratio, 3)} [${num(s.time.lo, 3)}, ${num(s.time.hi, 3)}]`,
    s.trialsNeeded === undefined ? '-' : String(s.trialsNeeded),
    s.reason,
  ]);
  const o = c.overall;
  const verdicts = countBy(c.scenarios, (s) => s.verdict);
  const body = `
<h1>dexhil compare: is B worse than A?</h1>
<p><b>A</b>: ${esc(c.a.label)}<br><b>B</b>: ${esc(c.b.label)}</p>
<div class="mode ${c.regression ? 'real' : 'sim'}" id="verdict">${esc(c.regression ? 'REGRESSION: B is worse than A in at least one scenario' : 'no regression found')}</div>
<p class="muted">A: ${esc(c.a.dir)} (run ${esc(c.a.runId)}); B: ${esc(c.b.dir)} (run ${esc(c.b.runId)}). One-sided alpha ${esc(c.options.alpha)} (Holm over scenarios), non-inferiority margin ${esc(pct(c.options.margin))}, power ${esc(c.options.power)} for the trials needed. Verdicts: ${Object.entries(verdicts).map(([v, n]) => `${esc(v)} ${esc(n)}`).join(', ')}.</p>
<div class="grid">
<div><h3>Success rates with 95% Wilson intervals</h3><div class="chart"><canvas id="chart-rates" data-chart="rates"></canvas></div></div>
<div><h3>B - A with 95% Newcombe intervals</h3><div class="chart"><canvas id="chart-diff" data-chart="diff"></canvas></div></div>
</div>
<h2>Per scenario</h2>
${table(['scenario', 'verdict', 'A success [95% CI]', 'B success [95% CI]', 'B - A, points [95% CI]', 'Holm p (B worse)', 'Fisher p', 'McNemar p (B worse vs better of pairs)', 'corrections / trial A / B', 'time ratio B/A [95% CI]', 'trials needed per build', 'why'], rows, new Set(), 'comparison')}
<p>Overall: A ${esc(rate(o.a))}, B ${esc(rate(o.b))}, B - A ${esc(pts(o.diff.diff))} [${esc(pts(o.diff.lo))}, ${esc(pts(o.diff.hi))}] points.</p>
${c.skipped.length > 0 ? `<p>Not compared: ${c.skipped.map((s) => `${esc(s.scenario)} (${esc(s.reason)})`).join('; ')}</p>` : ''}
${c.notes.length > 0 ? `<ul>${c.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
`;
  return page(`dexhil compare ${c.a.label} vs ${c.b.label}`, body, { kind: 'compare', a: c.a, b: c.b, overall: c.overall, scenarios: c.scenarios.map((s) => ({ scenario: s.scenario, verdict: s.verdict, a: s.a, b: s.b, diff: s.diff })) });
}

/** Writes compare.html to `file` (its folder made if missing); returns its path. */
export function writeCompareReport(c: Comparison, file: string): string {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, compareReportHtml(c));
  return file;
}
