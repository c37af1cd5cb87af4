/**
 * report.html: one self-contained page per run folder, built from its CSVs and manifest (so
 * `dexhil report <run-dir>` re-renders old runs): per-scenario success rates with 95% Wilson
 * intervals, trial durations, corrections by kind and by stage, the stage funnel, the failed
 * trials, the force/torque and grip signals around each failed or corrected trial's events
 * (signals.csv), the devices with their firmware, the run settings, and whether the rig was
 * simulated or real.
 *
 * Safe to open from an untrusted run folder: every string from a device, a config or a CSV is
 * escaped for HTML; the data the charts draw sits in a JSON block no browser executes (`<`
 * written as \u003c), and the page's Content-Security-Policy allows no network at all. Chart.js
 * (inlined, no network) draws on canvases; the tables carry the same numbers as text.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { csvParseRows } from 'd3-dsv';
import { pct } from '../analysis/compare.ts';
import { DexhilError } from '../harness/errors.ts';
import { quantile, wilson } from '../harness/stats.ts';
import { readCsvRows } from './csv-recorder.ts';

type Row = Record<string, string>;

/** HTML text: & < > " ' escaped. */
export function esc(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that can sit inside a <script> element: no `<` (so no `</script>`), no line separators. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const require = createRequire(import.meta.url);
let chartJs: string | undefined;
/** Chart.js's UMD build, to inline (read once). */
function chartLibrary(): string {
  // The package exports only its module builds; the browser build sits next to them in dist/.
  chartJs ??= readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8').replace(/<\/script/gi, '<\\/script');
  return chartJs;
}
let client: string | undefined;
function clientScript(): string {
  client ??= readFileSync(new URL('./html-client.js', import.meta.url), 'utf8');
  return client;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 20px 40px;color:#1d2430}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5dae1;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d5dae1;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f1f3f6}
td.n{text-align:right}
.mode{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:600;margin:6px 0}
.mode.sim{background:#e4f0ff;color:#0b4a99}.mode.real{background:#ffe9d6;color:#8a3b00}.mode.mixed{background:#fff4c2;color:#6b5200}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.chart{position:relative;height:280px}.chart.small{height:210px}
.event{border:1px solid #d5dae1;border-radius:4px;padding:6px 8px}.event p{margin:2px 0;font-size:12px}
.muted{color:#5b6573}.bad{color:#a11}.good{color:#176b2c}
`;

/** The page around a report's body: styles, the data block, Chart.js and the drawing script. */
export function page(title: string, body: string, data: unknown): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${chartLibrary()}</script>
<script>${clientScript()}</script>
</body>
</html>
`;
}

const num = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Keeps a series' shape in at most about 2*buckets points: each time bucket's lowest and highest. */
export function thin(points: readonly [number, number][], buckets = 90): [number, number][] {
  if (points.length <= 2 * buckets) return [...points];
  const t0 = points[0]![0];
  const span = points[points.length - 1]![0] - t0 || 1;
  const out: [number, number][] = [];
  let b = -1;
  let lo: [number, number] | undefined;
  let hi: [number, number] | undefined;
  const flush = (): void => {
    if (lo === undefined || hi === undefined) return;
    if (lo === hi) out.push(lo);
    else if (lo[0] <= hi[0]) out.push(lo, hi);
    else out.push(hi, lo);
  };
  for (const p of points) {
    const k = Math.min(buckets - 1, Math.floor(((p[0] - t0) / span) * buckets));
    if (k !== b) {
      flush();
      b = k;
      lo = p;
      hi = p;
    } else {
      if (p[1] < lo![1]) lo = p;
      if (p[1] > hi![1]) hi = p;
    }
  }
  flush();
  return out;
}

interface ScenarioData {
  name: string;
  version: string;
  trials: number;
  outcomes: Record<string, number>;
  judged: number;
  passes: number;
  rate: number;
  lo: number;
  hi: number;
  durationsS: number[];
  medianS: number;
  p95S: number;
  correctionsPerTrial: number;
  stages: string[];
  /** Trials that reached at least stage i+1. */
  reach: number[];
  correctionsByKind: Record<string, number>;
  /** stage -> kind -> count */
  correctionsByStage: Record<string, Record<string, number>>;
}

interface EventPlot {
  id: string;
  scenario: string;
  trial: number;
  outcome: string;
  label: string;
  events: { tS: number; what: string; fail: boolean }[];
  channels: Record<string, [number, number][]>;
}

export interface RunReportData {
  kind: 'run';
  runId: string;
  scenarios: ScenarioData[];
  plots: EventPlot[];
}

interface Manifest {
  run_id?: string;
  rig_id?: string;
  status?: string;
  clock?: string;
  seed?: number;
  rig_mode?: Record<string, string>;
  harness?: { version?: string; commit?: string };
  profile?: { name?: string; file?: string };
  started_at?: string;
  ended_at?: string;
  sim_seconds?: number;
  wall_seconds?: number;
  settings?: Record<string, unknown>;
  skipped?: { name: string; reason: string }[];
  rig_file?: string;
  trials_per_scenario?: number;
}

function readManifest(dir: string): Manifest {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return {};
  }
}

/** sim / real per device, from the manifest or else trials.csv's rig_mode (`arm=sim;hand=real`). */
function rigModes(manifest: Manifest, trials: Row[]): Record<string, string> {
  if (manifest.rig_mode !== undefined && typeof manifest.rig_mode === 'object') return manifest.rig_mode;
  const modes: Record<string, string> = {};
  for (const part of (trials[0]?.['rig_mode'] ?? '').split(';')) {
    const [k, v] = part.split('=');
    if (k && v) modes[k] = v;
  }
  return modes;
}

export function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

/**
 * The signals of the trials keyed `scenario#trial` in `wanted`, by trial and channel, as
 * [seconds, value] points. signals.csv holds every sample of the run (a row per sample and
 * channel: 168,000 rows for 3 x 100 trials), and the report shows a few trials, so rows are
 * picked as they are parsed and no object is made for the others.
 */
function readSignalSeries(file: string, wanted: ReadonlySet<string>): Map<string, Map<string, [number, number][]>> {
  const series = new Map<string, Map<string, [number, number][]>>();
  if (!existsSync(file) || wanted.size === 0) return series;
  let col: Record<'scenario' | 'trial' | 't_ms' | 'channel' | 'value', number> | undefined;
  csvParseRows(readFileSync(file, 'utf8'), (row, i) => {
    if (i === 0) {
      const at = (name: string): number => row.indexOf(name);
      col = { scenario: at('scenario'), trial: at('trial'), t_ms: at('t_ms'), channel: at('channel'), value: at('value') };
      return null;
    }
    if (col === undefined || row.length < 2) return null; // blank lines
    const k = `${row[col.scenario]}#${row[col.trial]}`;
    if (!wanted.has(k)) return null;
    let chans = series.get(k);
    if (chans === undefined) series.set(k, (chans = new Map()));
    const channel = row[col.channel] ?? '';
    let pts = chans.get(channel);
    if (pts === undefined) chans.set(channel, (pts = []));
    pts.push([Number(row[col.t_ms]) / 1000, Number(row[col.value])]);
    return null;
  });
  return series;
}

/** Everything report.html shows, from a run folder. */
export function runReportData(dir: string): { data: RunReportData; manifest: Manifest; trials: Row[]; steps: Row[]; corrections: Row[]; devices: Row[] } {
  const manifest = readManifest(dir);
  const trials = readCsvRows(path.join(dir, 'trials.csv'));
  const steps = readCsvRows(path.join(dir, 'steps.csv'));
  const corrections = readCsvRows(path.join(dir, 'corrections.csv'));
  const devices = readCsvRows(path.join(dir, 'devices.csv'));
  const key = (r: Row): string => `${r['scenario']}#${r['trial']}`;

  const scenarios: ScenarioData[] = [];
  for (const name of [...new Set(trials.map((t) => t['scenario']!))]) {
    const rows = trials.filter((t) => t['scenario'] === name);
    const outcomes = countBy(rows, (r) => r['outcome']!);
    const passes = outcomes['pass'] ?? 0;
    const judged = passes + (outcomes['fail'] ?? 0);
    const ci = wilson(passes, judged);
    const durationsS = rows.map((r) => Number(r['duration_ms']) / 1000);
    const stageNames: string[] = [];
    for (const s of steps.filter((x) => x['scenario'] === name)) stageNames[Number(s['stage_index']) - 1] = s['stage']!;
    const stagesTotal = Math.max(0, ...rows.map((r) => Number(r['stages_total'])));
    const stages = Array.from({ length: stagesTotal }, (_, i) => stageNames[i] ?? `stage ${i + 1}`);
    const mine = corrections.filter((c) => c['scenario'] === name);
    const byStage: Record<string, Record<string, number>> = {};
    for (const c of mine) {
      const st = (byStage[c['stage']!] ??= {});
      st[c['kind']!] = (st[c['kind']!] ?? 0) + 1;
    }
    scenarios.push({
      name,
      version: rows[0]?.['scenario_version'] ?? '',
      trials: rows.length,
      outcomes,
      judged,
      passes,
      rate: judged > 0 ? passes / judged : NaN,
      lo: ci.lo,
      hi: ci.hi,
      durationsS,
      medianS: quantile(durationsS, 0.5),
      p95S: quantile(durationsS, 0.95),
      correctionsPerTrial: rows.length > 0 ? rows.reduce((s, r) => s + Number(r['corrections_total'] || 0), 0) / rows.length : NaN,
      stages,
      reach: stages.map((_, i) => rows.filter((r) => Number(r['stages_reached']) >= i + 1).length),
      correctionsByKind: countBy(mine, (c) => c['kind']!),
      correctionsByStage: byStage,
    });
  }

  // The signals of every failed or corrected trial, with its events marked.
  const correctionsOf = new Map<string, Row[]>();
  for (const c of corrections) {
    const list = correctionsOf.get(key(c));
    if (list === undefined) correctionsOf.set(key(c), [c]);
    else list.push(c);
  }
  const failed = (t: Row): boolean => ['fail', 'error', 'timeout'].includes(t['outcome']!);
  const shown = trials.filter((t) => failed(t) || correctionsOf.has(key(t)));
  const series = readSignalSeries(path.join(dir, 'signals.csv'), new Set(shown.map(key)));
  const plots: EventPlot[] = [];
  for (const t of shown) {
    const cs = correctionsOf.get(key(t)) ?? [];
    const events = cs.map((c) => ({ tS: Number(c['t_ms']) / 1000, what: `${c['kind']}${c['recovered'] === '1' ? '' : ' (not recovered)'}`, fail: false }));
    if (failed(t)) events.push({ tS: Number(t['duration_ms']) / 1000, what: `${t['outcome']}: ${t['failure_label']}`, fail: true });
    const channels: Record<string, [number, number][]> = {};
    for (const [ch, pts] of [...(series.get(key(t)) ?? new Map<string, [number, number][]>())]) channels[ch] = thin(pts);
    plots.push({ id: `trial-${t['scenario']}-${t['trial']}`, scenario: t['scenario']!, trial: Number(t['trial']), outcome: t['outcome']!, label: t['failure_label'] ?? '', events, channels });
  }
  return { data: { kind: 'run', runId: manifest.run_id ?? trials[0]?.['run_id'] ?? path.basename(dir), scenarios, plots }, manifest, trials, steps, corrections, devices };
}

export function table(headers: readonly string[], rows: readonly (readonly unknown[])[], numeric: ReadonlySet<number> = new Set(), id?: string): string {
  const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${id === undefined ? '' : ` id="${esc(id)}"`}>\n${head}\n${body}\n</table>`;
}

/** The report.html text of a run folder. */
export function runReportHtml(dir: string): string {
  const { data, manifest, trials, steps, devices } = runReportData(dir);
  const modes = rigModes(manifest, trials);
  const kinds = new Set(Object.values(modes));
  const mode = kinds.size === 0 ? 'sim' : kinds.size > 1 ? 'mixed' : [...kinds][0] === 'real' ? 'real' : 'sim';
  const modeText =
    mode === 'sim'
      ? 'SIMULATED rig: every device is a simulated peer, on a virtual clock'
      : mode === 'real'
        ? 'REAL rig: every device is hardware'
        : `MIXED rig: ${Object.entries(modes).map(([d, m]) => `${d} ${m}`).join(', ')}`;
  const lastStage = new Map<string, string>();
  for (const s of steps) lastStage.set(`${s['scenario']}#${s['trial']}`, s['stage'] ?? '');
  const failed = trials.filter((t) => ['fail', 'error', 'timeout'].includes(t['outcome']!));
  const settings = manifest.settings ?? {};
  const settingRows: [string, unknown][] = [
    ['run id', data.runId],
    ['rig', `${manifest.rig_id ?? trials[0]?.['rig_id'] ?? ''}${manifest.rig_file ? ` (${manifest.rig_file})` : ''}`],
    ['status', manifest.status ?? ''],
    ['clock', manifest.clock ?? ''],
    ['seed', manifest.seed ?? trials[0]?.['seed'] ?? ''],
    ['trials per scenario', manifest.trials_per_scenario ?? ''],
    ['profile', manifest.profile?.name ?? ''],
    ['harness', `dexhil ${manifest.harness?.version ?? ''} ${manifest.harness?.commit ?? ''}`],
    ['started', manifest.started_at ?? ''],
    ['ended', manifest.ended_at ?? ''],
    ['simulated / wall seconds', manifest.sim_seconds === undefined ? '' : `${manifest.sim_seconds} / ${manifest.wall_seconds}`],
    ...Object.entries(settings).map(([k, v]): [string, unknown] => [`setting ${k}`, typeof v === 'object' ? JSON.stringify(v) : v]),
  ];
  const body = `
<h1>dexhil run ${esc(data.runId)}</h1>
<div class="mode ${mode}" id="rig-mode">${esc(modeText)}</div>
<p class="muted">${esc(trials.length)} trials in ${esc(data.scenarios.length)} scenarios. Success rate = passes / (passes + failures): errors, timeouts and aborted trials could not be judged and are counted apart.</p>

<h2>Success per scenario</h2>
${table(
  ['scenario', 'version', 'trials', 'pass', 'fail', 'error', 'timeout', 'aborted', 'success rate', '95% CI low', '95% CI high', 'corrections / trial', 'median s', 'p95 s'],
  data.scenarios.map((s) => [s.name, s.version, s.trials, s.passes, s.outcomes['fail'] ?? 0, s.outcomes['error'] ?? 0, s.outcomes['timeout'] ?? 0, s.outcomes['aborted'] ?? 0, pct(s.rate), pct(s.lo), pct(s.hi), num(s.correctionsPerTrial), num(s.medianS, 1), num(s.p95S, 1)]),
  new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
  'summary',
)}
${(manifest.skipped ?? []).length > 0 ? `<p>Skipped: ${(manifest.skipped ?? []).map((s) => `${esc(s.name)} (${esc(s.reason)})`).join('; ')}</p>` : ''}
<div class="grid">
<div><h3>Success rate with 95% Wilson interval</h3><div class="chart"><canvas id="chart-rates" data-chart="rates"></canvas></div></div>
<div><h3>Trial durations</h3><div class="chart"><canvas id="chart-durations" data-chart="durations"></canvas></div></div>
<div><h3>Corrections by kind</h3><div class="chart"><canvas id="chart-kinds" data-chart="kinds"></canvas></div></div>
</div>
<h3>Corrections by stage</h3>
<div class="chart" style="height:${60 + 22 * data.scenarios.reduce((n, s) => n + s.stages.length, 0)}px"><canvas id="chart-stages" data-chart="stages"></canvas></div>

<h2>Stage reach</h2>
<div class="grid">
${data.scenarios.map((s, i) => `<div><h3>${esc(s.name)}</h3><div class="chart small"><canvas id="chart-funnel-${i}" data-chart="funnel" data-index="${i}"></canvas></div></div>`).join('\n')}
</div>

<h2>Failed trials (${esc(failed.length)})</h2>
${
  failed.length === 0
    ? '<p>None.</p>'
    : table(
        ['scenario', 'trial', 'ic', 'outcome', 'failure label', 'last stage', 'fault domain', 'duration s', 'peak force N', 'corrections'],
        failed.map((t) => [t['scenario'], t['trial'], t['ic_id'], t['outcome'], t['failure_label'], lastStage.get(`${t['scenario']}#${t['trial']}`) ?? '', t['fault_domain'], num(Number(t['duration_ms']) / 1000, 1), t['peak_force_n'], t['corrections_by_kind']]),
        new Set([1, 7, 8]),
        'failed',
      )
}

<h2>Signals around events (${esc(data.plots.length)} trials)</h2>
<p class="muted">Force and torque magnitudes of each F/T sensor and the hand's summed fingertip force, from 2 s before a trial's first correction or failure to 1 s after its last (signals.csv); vertical lines mark the events. Charts draw as they scroll into view.</p>
<div class="grid" id="plots">
${data.plots
  .map(
    (p, i) => `<div class="event" id="${esc(p.id)}"><h3>${esc(p.scenario)} trial ${esc(p.trial)}: ${esc(p.outcome)}${p.label ? ` (${esc(p.label)})` : ''}</h3>
<div class="chart small"><canvas data-chart="plot" data-index="${i}"></canvas></div>
<p>${p.events.map((e) => `${esc(e.tS.toFixed(2))} s ${esc(e.what)}`).join('; ')}</p></div>`,
  )
  .join('\n')}
</div>

<h2>Devices</h2>
${table(['device', 'kind', 'transport', 'mode', 'model', 'firmware', 'protocol', 'serial', 'rx', 'tx', 'crc errors', 'seq gaps', 'malformed', 'reboots', 'reconnects', 'rx rate Hz'], devices.map((d) => [d['device'], d['kind'], d['transport'], d['mode'], d['model'], d['firmware'], d['protocol'], d['serial'], d['rx'], d['tx'], d['crc_errors'], d['seq_gaps'], d['malformed'], d['reboots'], d['reconnects'], d['rx_rate_hz']]), new Set([8, 9, 10, 11, 12, 13, 14, 15]), 'devices')}

<h2>Run settings</h2>
${table(['setting', 'value'], settingRows, new Set(), 'settings')}
`;
  return page(`dexhil run ${data.runId}`, body, data);
}

/**
 * Writes report.html into the run folder; returns its path.
 * @throws DexhilError USAGE when the folder is not a run folder.
 */
export function writeRunReport(dir: string): string {
  if (!existsSync(dir)) throw new DexhilError('USAGE', `no run folder ${dir}`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  if (!existsSync(path.join(dir, 'trials.csv'))) throw new DexhilError('USAGE', `${dir} has no trials.csv, so it is not a run folder or its run stopped before the first trial`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  const file = path.join(dir, 'report.html');
  writeFileSync(file, runReportHtml(dir));
  return file;
}

