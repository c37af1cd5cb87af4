/**
 * What report.html shows, read from a run folder's CSVs and manifest: per-scenario rates with
 * Wilson intervals, durations, corrections, the stage funnel, and the signals around each failed
 * or corrected trial. reports/html.ts renders it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { csvParseRows } from 'd3-dsv';
import { quantile, wilson } from '../harness/stats.ts';
import { readCsvRows } from './csv-recorder.ts';
import { SIGNAL_COLUMNS, thin, type SignalPlot } from './signals.ts';

type Row = Record<string, string>;

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

export interface Manifest {
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
export function rigModes(manifest: Manifest, trials: Row[]): Record<string, string> {
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

type Series = Map<string, Map<string, [number, number][]>>;

/** The points of `trial`'s `channel` in `series` (an empty list the first time). */
function pointsOf(series: Series, trial: string, channel: string): [number, number][] {
  let chans = series.get(trial);
  if (chans === undefined) series.set(trial, (chans = new Map()));
  let pts = chans.get(channel);
  if (pts === undefined) chans.set(channel, (pts = []));
  return pts;
}

/**
 * The signals of the trials keyed `scenario#trial` in `wanted`, by trial and channel, as
 * [seconds, value] points. A row that has not the header's number of cells (the torn last line
 * of a run that crashed) is left out. signals.csv holds every sample of the run's failed and
 * corrected trials (168,000 rows for 3 x 100 trials), read at the end of every run: a file as
 * SignalCollector writes it is cut by position (scanSignals), any other goes through d3-dsv.
 */
export function readSignalSeries(file: string, wanted: ReadonlySet<string>): Series {
  if (!existsSync(file) || wanted.size === 0) return new Map();
  const text = readFileSync(file, 'utf8');
  const plain = text.startsWith(`${SIGNAL_COLUMNS.join(',')}\n`) && !text.includes('"') && !text.includes('\r');
  return plain ? scanSignals(text, wanted) : parseSignals(text, wanted);
}

/** readSignalSeries through d3-dsv's RFC 4180 parser: any quoting, line ends or column order. */
export function parseSignals(text: string, wanted: ReadonlySet<string>): Series {
  const series: Series = new Map();
  let col: Record<'scenario' | 'trial' | 't_ms' | 'channel' | 'value', number> | undefined;
  let cells = 0;
  csvParseRows(text, (row, i) => {
    if (i === 0) {
      const at = (name: string): number => row.indexOf(name);
      col = { scenario: at('scenario'), trial: at('trial'), t_ms: at('t_ms'), channel: at('channel'), value: at('value') };
      cells = row.length;
      return null;
    }
    if (col === undefined || row.length !== cells) return null;
    const k = `${row[col.scenario]}#${row[col.trial]}`;
    if (!wanted.has(k)) return null;
    pointsOf(series, k, row[col.channel] ?? '').push([Number(row[col.t_ms]) / 1000, Number(row[col.value])]);
    return null;
  });
  return series;
}

/**
 * readSignalSeries for a file with SIGNAL_COLUMNS in order, no quote and `\n` line ends, as the
 * recorder writes it when no cell needs quoting: every row is then six cells cut at its five
 * commas. A trial's rows are consecutive, so the trial is looked up when the `run_id,scenario,trial,`
 * lead changes, not on every row. Gives what parseSignals gives (test/signals-csv.test.ts).
 */
export function scanSignals(text: string, wanted: ReadonlySet<string>): Series {
  const series: Series = new Map();
  const cut = [0, 0, 0, 0, 0, 0];
  let lead = ''; // the first three cells and their comma, of the rows being read
  let trial: string | undefined; // their `scenario#trial` if wanted
  let channel = '';
  let points: [number, number][] = [];
  for (let pos = text.indexOf('\n') + 1; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let n = 0;
    for (let c = text.indexOf(',', pos); c >= 0 && c < end && n <= 5; c = text.indexOf(',', c + 1)) cut[n++] = c;
    if (n === 5) {
      if (lead === '' || !text.startsWith(lead, pos)) {
        lead = text.slice(pos, cut[2]! + 1);
        const k = `${text.slice(cut[0]! + 1, cut[1])}#${text.slice(cut[1]! + 1, cut[2])}`;
        trial = wanted.has(k) ? k : undefined;
        channel = '';
      }
      if (trial !== undefined) {
        const from = cut[3]! + 1;
        if (channel === '' || cut[4]! - from !== channel.length || !text.startsWith(channel, from)) {
          channel = text.slice(from, cut[4]);
          points = pointsOf(series, trial, channel);
        }
        points.push([Number(text.slice(cut[2]! + 1, cut[3])) / 1000, Number(text.slice(cut[4]! + 1, end))]);
      }
    }
    pos = end + 1;
  }
  return series;
}

/**
 * Everything report.html shows, from a run folder. `kept`: the plot of every trial that has
 * signals, by `scenario#trial`, as the run kept them (SignalCollector); without them, the plots
 * are drawn from signals.csv, to the same points.
 */
export function runReportData(dir: string, kept?: ReadonlyMap<string, SignalPlot>): { data: RunReportData; manifest: Manifest; trials: Row[]; steps: Row[]; corrections: Row[]; devices: Row[] } {
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
  const series = kept === undefined ? readSignalSeries(path.join(dir, 'signals.csv'), new Set(shown.map(key))) : undefined;
  const plots: EventPlot[] = [];
  for (const t of shown) {
    const cs = correctionsOf.get(key(t)) ?? [];
    const events = cs.map((c) => ({ tS: Number(c['t_ms']) / 1000, what: `${c['kind']}${c['recovered'] === '1' ? '' : ' (not recovered)'}`, fail: false }));
    if (failed(t)) events.push({ tS: Number(t['duration_ms']) / 1000, what: `${t['outcome']}: ${t['failure_label']}`, fail: true });
    const plot: SignalPlot = {};
    if (series === undefined) Object.assign(plot, kept?.get(key(t)));
    else for (const [ch, pts] of series.get(key(t)) ?? []) plot[ch] = thin(pts.map((p) => p[0]), pts.map((p) => p[1]));
    const channels: Record<string, [number, number][]> = {};
    for (const [ch, flat] of Object.entries(plot)) channels[ch] = Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]);
    plots.push({ id: `trial-${t['scenario']}-${t['trial']}`, scenario: t['scenario']!, trial: Number(t['trial']), outcome: t['outcome']!, label: t['failure_label'] ?? '', events, channels });
  }
  return { data: { kind: 'run', runId: manifest.run_id ?? trials[0]?.['run_id'] ?? path.basename(dir), scenarios, plots }, manifest, trials, steps, corrections, devices };
}
