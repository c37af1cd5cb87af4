/**
 * `dexhil run --resume <run-dir>`: continue an interrupted run with its own settings. The run's
 * manifest says what was asked for; its reports are repaired (a torn last line cut, rows of the
 * trial that did not finish removed) and the trials already on disk are skipped, so the finished
 * run has every requested trial exactly once and every earlier row unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repairCsv } from '../reports/csv-repair.ts';
import { findScenario } from '../scenarios/index.ts';
import { DexhilError } from './errors.ts';
import type { TrialRecord } from './events.ts';
import type { ScenarioDef } from './scenario.ts';

/** What a run was asked to do, kept in manifest.json so it can be resumed. */
export interface RunSettings {
  rig_file: string;
  profile_file?: string;
  scenarios: string[];
  trials: number;
  seed: number;
  trace: 'on' | 'off' | 'auto';
  preflight_seconds?: number;
  baseline?: { dir: string; design: { p0: number; p1: number; alpha: number; power: number }; stopWhenDecided: boolean };
  judge?: 'operator';
  /** Trials per block when the run went in trial blocks on simulated rigs (harness/blocks.ts). */
  block_trials?: number;
}

export interface ResumeState {
  dir: string;
  runId: string;
  settings: RunSettings;
  scenarios: ScenarioDef[];
  /** Trial numbers on disk, per scenario. */
  done: Map<string, Set<number>>;
  /** The trials already on disk, as records for the summary and the sequential test. */
  records: TrialRecord[];
  /** What the repair cut, said on the terminal and kept in the manifest. */
  repairs: string[];
  /** The manifest as it was (start time, earlier resumptions). */
  previous: { started_at?: string; resumed?: unknown[]; status?: string };
}

/** A trials.csv row back as the parts of a TrialRecord that the summary and tests need. */
function recordOf(row: Record<string, string>): TrialRecord {
  const corrections: Record<string, number> = {};
  for (const part of (row['corrections_by_kind'] ?? '').split(';')) {
    const [k, n] = part.split('=');
    if (k && n) corrections[k] = Number(n);
  }
  return {
    scenario: row['scenario']!,
    scenarioVersion: row['scenario_version']!,
    trial: Number(row['trial']),
    icId: row['ic_id']!,
    seed: Number(row['seed']),
    outcome: row['outcome'] as TrialRecord['outcome'],
    success: row['outcome'] === 'pass',
    firstAttemptSuccess: row['first_attempt_success'] === '1',
    stagesReached: Number(row['stages_reached']),
    stagesTotal: Number(row['stages_total']),
    rubricScore: Number(row['rubric_score']),
    failureLabel: row['failure_label'] ?? '',
    faultDomain: (row['fault_domain'] ?? '') as TrialRecord['faultDomain'],
    corrections,
    startMs: 0,
    durationMs: Number(row['duration_ms']),
    timeoutMs: Number(row['timeout_ms']),
    peakForceN: Number(row['peak_force_n']),
    wallStartMs: Date.parse(row['started_at'] ?? '') || 0,
    wallMs: Number(row['wall_ms']),
  };
}

/**
 * Reads and repairs an interrupted run folder.
 * @throws DexhilError USAGE when the folder is not a run folder or its manifest lacks the settings.
 */
export function prepareResume(dirArg: string): ResumeState {
  const dir = path.resolve(dirArg);
  const manifestFile = path.join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new DexhilError('USAGE', `--resume: ${dir} has no manifest.json; it is not a run folder`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  let manifest: { run_id?: string; settings?: RunSettings; started_at?: string; resumed?: unknown[]; status?: string };
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as typeof manifest;
  } catch (err) {
    throw new DexhilError('USAGE', `--resume: cannot read ${manifestFile}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const settings = manifest.settings;
  if (settings === undefined || manifest.run_id === undefined) throw new DexhilError('USAGE', `--resume: ${manifestFile} has no run settings (written by an older dexhil?)`, { hint: 'start a new run instead' });
  const scenarios = settings.scenarios.map((name) => {
    const s = findScenario(name);
    if (s === undefined) throw new DexhilError('USAGE', `--resume: the run had scenario '${name}', which this dexhil does not know`);
    return s;
  });
  const repairs: string[] = [];
  const trials = repairCsv(path.join(dir, 'trials.csv'));
  repairs.push(...trials.repairs);
  for (const r of trials.rows) {
    const s = scenarios.find((x) => x.name === r['scenario']);
    if (s !== undefined && r['scenario_version'] !== s.version) {
      throw new DexhilError('USAGE', `--resume: the run's ${s.name} trials are version ${r['scenario_version']}, this dexhil has ${s.version}; finishing it would mix versions`, { hint: 'resume with the dexhil that started the run, or start a new run' });
    }
  }
  const done = new Map<string, Set<number>>();
  for (const r of trials.rows) {
    const set = done.get(r['scenario']!) ?? new Set<number>();
    set.add(Number(r['trial']));
    done.set(r['scenario']!, set);
  }
  const finished = (row: Record<string, string>): boolean => done.get(row['scenario']!)?.has(Number(row['trial'])) === true;
  for (const f of ['steps.csv', 'corrections.csv', 'signals.csv']) repairs.push(...repairCsv(path.join(dir, f), finished).repairs);
  return {
    dir,
    runId: manifest.run_id,
    settings,
    scenarios,
    done,
    records: trials.rows.map(recordOf),
    repairs,
    previous: { ...(manifest.started_at === undefined ? {} : { started_at: manifest.started_at }), ...(manifest.resumed === undefined ? {} : { resumed: manifest.resumed }), ...(manifest.status === undefined ? {} : { status: manifest.status }) },
  };
}
