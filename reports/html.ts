/**
 * report.html: one self-contained page per run folder, built from its CSVs and manifest (so
 * `dexhil report <run-dir>` re-renders old runs): per-scenario success rates with 95% Wilson
 * intervals, trial durations, corrections by kind and by stage, the stage funnel, the failed
 * trials, the force/torque and grip signals around each failed or corrected trial's events
 * (signals.csv), the devices with their firmware, the run settings, and whether the rig was
 * simulated or real. The data comes from reports/run-data.ts; this module renders it. A run that
 * just ended hands it the signal plots its recorder kept (the same points signals.csv gives).
 *
 * Safe to open from an untrusted run folder: every string from a device, a config or a CSV is
 * escaped for HTML; the data the charts draw sits in a JSON block no browser executes (`<`
 * written as \u003c), and the page's Content-Security-Policy allows no network at all. Chart.js
 * (inlined, no network) draws on canvases; the tables carry the same numbers as text.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pct } from '../analysis/compare.ts';
import { DexhilError } from '../harness/errors.ts';
import { rigModes, runReportData } from './run-data.ts';
import type { SignalPlot } from './signals.ts';

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

export function table(headers: readonly string[], rows: readonly (readonly unknown[])[], numeric: ReadonlySet<number> = new Set(), id?: string): string {
  const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${id === undefined ? '' : ` id="${esc(id)}"`}>\n${head}\n${body}\n</table>`;
}

/** The report.html text of a run folder. */
export function runReportHtml(dir: string, plots?: ReadonlyMap<string, SignalPlot>): string {
  const { data, manifest, trials, steps, devices } = runReportData(dir, plots);
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
 * Writes report.html into the run folder; returns its path. `plots`: every trial's signal plot by
 * `scenario#trial`, when the run kept them; else they are read from signals.csv.
 * @throws DexhilError USAGE when the folder is not a run folder.
 */
export function writeRunReport(dir: string, plots?: ReadonlyMap<string, SignalPlot>): string {
  if (!existsSync(dir)) throw new DexhilError('USAGE', `no run folder ${dir}`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  if (!existsSync(path.join(dir, 'trials.csv'))) throw new DexhilError('USAGE', `${dir} has no trials.csv, so it is not a run folder or its run stopped before the first trial`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  const file = path.join(dir, 'report.html');
  writeFileSync(file, runReportHtml(dir, plots));
  return file;
}

