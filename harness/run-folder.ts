/**
 * A run's folder and the files that describe the run as a whole (manifest.json, junit.xml,
 * report.html), shared by a run on one rig (harness/run.ts) and a run in trial blocks
 * (harness/run-blocks.ts).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emptyStats, type DeviceInfo, type LinkStats, type RigMode } from '../drivers/types.ts';
import { writeRunReport } from '../reports/html.ts';
import type { SignalPlot } from '../reports/signals.ts';
import { writeJunit } from '../reports/junit.ts';
import type { LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';
import type { DeviceHealth, RunInfo } from './events.ts';
import type { ResumeState, RunSettings } from './resume.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The harness's version, from package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The version and the git commit it runs from (`-dirty` with uncommitted changes), for manifests. */
export function harnessVersion(): { version: string; commit: string } {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (dirty !== '') commit += '-dirty';
  } catch {
    // not a git checkout (e.g. an npm tarball): the version alone identifies the harness
  }
  return { version: packageVersion(), commit };
}

/** Replaces a file in one step (write aside, flush, rename): a crash leaves the old or the new one whole. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export function makeRunId(rigId: string, seed: number): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${rigId}-s${seed}-${process.pid}`;
}

/** Creates a run's folder (`outDir`, or reports/runs/<run-id>) and returns its absolute path. */
export function makeRunFolder(runId: string, outDir?: string): string {
  const dir = path.resolve(outDir ?? path.join(ROOT, 'reports/runs', runId));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    throw new DexhilError('USAGE', `cannot create the run folder ${dir}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { hint: 'pick another --out folder', cause });
  }
  return dir;
}

/** What the manifest says about the rig a run ran on. */
export interface RigFacts {
  id: string;
  mode: RigMode;
  clock: 'real' | 'virtual';
  devices: readonly DeviceInfo[];
  notices: readonly string[];
}

/** The run as the manifest describes it from its start on. */
export interface RunDescription {
  dir: string;
  runId: string;
  loaded: LoadedRig;
  settings: RunSettings;
  resume: ResumeState | undefined;
  version: string;
  commit: string;
}

/** Writes the manifest before any device is opened: a run killed at any moment after this can be resumed. */
export function writeStartingManifest(run: RunDescription): void {
  if (run.resume !== undefined) return; // a resumed run keeps its manifest until it runs
  writeAtomic(path.join(run.dir, 'manifest.json'), JSON.stringify({ harness: { name: 'dexhil', version: run.version, commit: run.commit }, run_id: run.runId, status: 'starting', settings: run.settings, started_at: new Date().toISOString() }, null, 2) + '\n');
}

/** Writes manifest.json of a run under way (status, and at the end what happened) in one step. */
export function manifestWriter(run: RunDescription, rig: RigFacts, info: RunInfo): (extra: Record<string, unknown>) => void {
  const { resume, loaded, settings } = run;
  return (extra) => {
    const manifest = {
      harness: { name: 'dexhil', version: run.version, commit: run.commit },
      run_id: run.runId,
      rig_id: rig.id,
      rig_file: settings.rig_file,
      rig_mode: rig.mode,
      clock: rig.clock,
      seed: settings.seed,
      trials_per_scenario: settings.trials,
      profile: { name: loaded.profile.name, file: loaded.profileFile, description: loaded.profile.description },
      devices: rig.devices,
      notices: rig.notices,
      scenarios: info.scenarios,
      skipped: info.skipped,
      rig_config: loaded.config,
      started_at: resume?.previous.started_at ?? new Date(info.startedWallMs).toISOString(),
      settings,
      ...(resume === undefined ? {} : { resumed: [...(resume.previous.resumed ?? []), { at: new Date(info.startedWallMs).toISOString(), trials_on_disk: resume.records.length, repairs: resume.repairs }] }),
      ...extra,
    };
    writeAtomic(path.join(run.dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  };
}

/** Each device's identity and link health over `upS` seconds of its rig's clock, for devices.csv. */
export function deviceHealth(devices: readonly DeviceInfo[], linkStats: Record<string, LinkStats>, reconnects: Record<string, number>, upS: number): DeviceHealth[] {
  return devices.map((info) => {
    const stats = linkStats[info.name] ?? emptyStats();
    return { info, stats, reconnects: reconnects[info.name] ?? 0, rxRateHz: upS > 0 ? stats.rx / upS : 0 };
  });
}

/**
 * The run's closing files around its final manifest: junit.xml from the finished CSVs (so a
 * resumed run's covers all its trials) before it, report.html (which shows it) after it, drawing
 * the plots the run's signal recorder kept, when it kept them. A report that cannot be written is
 * said, and the run's records stand.
 */
export function closeRunFolder(dir: string, writeFinalManifest: () => void, plots?: ReadonlyMap<string, SignalPlot>): void {
  try {
    writeJunit(dir);
  } catch (err) {
    process.stderr.write(`dexhil: could not write junit.xml: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  writeFinalManifest();
  try {
    writeRunReport(dir, plots);
  } catch (err) {
    process.stderr.write(`dexhil: could not write report.html: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
