/**
 * A run of simulated devices, in trial blocks (harness/blocks.ts) on as many threads as `jobs`:
 * the same run folder, events, summary and stops as a run on one rig (harness/run.ts), with each
 * block on a simulated rig of its own. Results are recorded in plan order, so they are the same
 * for any number of threads.
 */
import { availableParallelism } from 'node:os';
import { emptyStats, type DeviceInfo, type LinkStats } from '../drivers/types.ts';
import { CsvRecorder } from '../reports/csv-recorder.ts';
import { SignalRecorder } from '../reports/signals.ts';
import { findScenario } from '../scenarios/index.ts';
import { BlockPool } from './block-pool.ts';
import { planBlocks } from './blocks.ts';
import type { LoadedRig } from './config.ts';
import { EventBus, type RunInfo, type TrialRecord } from './events.ts';
import { createRig } from './rig.ts';
import { resolveRig, scenariosFor } from './rig-plan.ts';
import { closeRunFolder, deviceHealth, manifestWriter, writeStartingManifest, type RigFacts, type RunDescription } from './run-folder.ts';
import type { RunControl, RunOptions, RunResult } from './run.ts';
import type { SequentialPlan } from './sequential-plan.ts';
import type { ScenarioDef } from './scenario.ts';
import { SummaryCollector } from './summary.ts';

/** Wall ms a simulated run's trial rows may wait to go to disk together (reports/csv-recorder.ts). */
const SYNC_EVERY_MS = 100;

/** Blocks a thread takes by default: with fewer, starting a worker costs more than it gives (measured). */
export const BLOCKS_PER_THREAD = 6;

export interface BlockRunPlan {
  loaded: LoadedRig;
  described: RunDescription;
  sequential: SequentialPlan | undefined;
  blockTrials: number;
}

/** Runs the plan in trial blocks; settles once every block's rig is closed and the files are written. */
export async function runBlocks(options: RunOptions, plan: BlockRunPlan, control?: { onRunner?: (r: RunControl) => void }): Promise<RunResult> {
  const { loaded, described, sequential } = plan;
  const { dir, runId, resume } = described;
  writeStartingManifest(described);
  const notices = resolveRig(loaded).notices;
  for (const n of notices) options.notice?.(n);
  const { runnable, skipped } = scenariosFor(loaded.config, options.scenarios);
  const epochMs = options.epochMs ?? Date.now();

  const bus = new EventBus();
  // Trials end about a hundred times a second here: their rows go to disk together, every 0.1 s.
  const csv = new CsvRecorder(dir, () => '', resume !== undefined, SYNC_EVERY_MS);
  const summary = new SummaryCollector();
  for (const record of resume?.records ?? []) summary.listener({ type: 'trial-end', record });
  const signals = new SignalRecorder(dir, undefined, resume !== undefined);
  bus.subscribe(signals.listener); // a trial's signals are on disk before its trials.csv row
  bus.subscribe(csv.listener);
  bus.subscribe(summary.listener);
  for (const l of options.listeners ?? []) bus.subscribe(l);

  // The sequential test of each scenario; resuming, the trials on disk count first (and may have decided).
  const stopRules = new Map<string, (r: TrialRecord) => boolean>();
  const planned: ScenarioDef[] = [];
  for (const s of runnable) {
    const stopAfter = sequential?.stopAfter(s.name, options.trials, resume?.records);
    if (stopAfter === 'decided') continue;
    if (stopAfter !== undefined) stopRules.set(s.name, stopAfter);
    planned.push(s);
  }
  const onDisk = (scenario: string, first: number, last: number): number[] => [...(resume?.done.get(scenario) ?? [])].filter((t) => t >= first && t <= last);
  // A block whose trials are all on disk has nothing to give; the others run whole (see blocks.ts).
  const blocks = planBlocks(planned.map((s) => s.name), options.trials, plan.blockTrials)
    .filter((b) => onDisk(b.scenario, b.first, b.last).length < b.last - b.first + 1)
    .map((b, index) => ({ ...b, index }));
  const byName = new Map(planned.map((s) => [s.name, s]));
  // Worker threads find scenarios by name in the registry: a scenario from elsewhere runs in this thread.
  const threadsCan = planned.every((s) => findScenario(s.name) === s);
  // A worker thread costs about half a second to start and warm up, as much as one block on a warm
  // thread: by default a thread per BLOCKS_PER_THREAD blocks, up to one per core.
  const jobs = !threadsCan ? 1 : Math.max(1, options.jobs ?? Math.min(availableParallelism(), Math.floor(blocks.length / BLOCKS_PER_THREAD)));

  let facts: RigFacts | undefined;
  let writeManifest: ((extra: Record<string, unknown>) => void) | undefined;
  let scenarioNow: string | undefined;
  let scenarioEndMs = 0;
  const endScenario = (): void => {
    if (scenarioNow !== undefined) bus.emit({ type: 'scenario-end', scenario: scenarioNow, tMs: scenarioEndMs });
    scenarioNow = undefined;
  };
  const ready = (devices: DeviceInfo[]): void => {
    facts = { id: loaded.config.rig.id, mode: Object.fromEntries(devices.map((d) => [d.name, d.mode])), clock: 'virtual', devices, notices };
    const info: RunInfo = {
      runId,
      rigId: facts.id,
      rigMode: facts.mode,
      seed: options.seed,
      clock: 'virtual',
      devices,
      scenarios: runnable.map((s) => ({ name: s.name, version: s.version, trials: options.trials })),
      skipped,
      config: loaded.config,
      profile: loaded.profile.name,
      startedWallMs: epochMs,
    };
    writeManifest = manifestWriter(described, facts, info);
    writeManifest({ status: 'running' });
    bus.emit({ type: 'run-start', run: info });
    for (const sk of skipped) bus.emit({ type: 'scenario-skip', scenario: sk.name, reason: sk.reason });
  };
  const pool = new BlockPool({
    blocks,
    jobs,
    registered: threadsCan,
    scenario: (name) => byName.get(name)!,
    job: (block) => ({
      rig: loaded,
      runId,
      seed: options.seed,
      epochMs,
      block,
      onDisk: onDisk(block.scenario, block.first, block.last),
    }),
    onReady: ready,
    onTrial: (record, events, trialSignals) => {
      if (record.scenario !== scenarioNow) {
        endScenario();
        const s = byName.get(record.scenario)!;
        scenarioNow = s.name;
        bus.emit({ type: 'scenario-start', scenario: s.name, version: s.version, trials: options.trials, tMs: events[0]?.type === 'trial-start' ? events[0].tMs : 0 });
      }
      for (const e of events) {
        if (e.type === 'trial-end') signals.add(record, trialSignals);
        bus.emit(e);
      }
      scenarioEndMs = events[0]?.type === 'trial-start' ? events[0].tMs + record.durationMs : scenarioEndMs;
      return stopRules.get(record.scenario)?.(record) === true;
    },
    onEvents: (events) => {
      for (const e of events) bus.emit(e);
    },
    onNotice: (text) => options.notice?.(text),
  });
  control?.onRunner?.(pool);

  const wall0 = performance.now();
  if (blocks.length === 0) {
    // Nothing is left to run (a resumed run with every trial on disk): a rig comes up only to say what it is.
    const rig = await createRig(loaded, { seed: options.seed, epochMs });
    ready([...rig.devices]);
    await rig.close();
  }
  const result = await pool.run();
  const wallSeconds = (performance.now() - wall0) / 1000;
  if (facts === undefined || writeManifest === undefined) {
    // No block's rig came up: as a run whose rig does not start, nothing was run or recorded.
    signals.close();
    throw result.failure ?? new Error('no trial block ran');
  }
  endScenario();
  const simMs = result.ends.reduce((a, e) => a + e.simMs, 0);
  const linkStats: Record<string, LinkStats> = {};
  const reconnects: Record<string, number> = {};
  for (const end of result.ends) {
    for (const [name, st] of Object.entries(end.linkStats)) {
      const sum = (linkStats[name] ??= emptyStats());
      for (const k of Object.keys(sum) as (keyof LinkStats)[]) sum[k] += st[k];
    }
    for (const [name, n] of Object.entries(end.reconnects)) reconnects[name] = (reconnects[name] ?? 0) + n;
  }
  // The block rigs ran side by side from the run's start: the run ended with the longest.
  const endedWallMs = epochMs + Math.floor(Math.max(0, ...result.ends.map((e) => e.simMs)));
  bus.emit({ type: 'devices', devices: deviceHealth(facts.devices, linkStats, reconnects, simMs / 1000) });
  bus.emit({ type: 'run-end', runId, tMs: simMs, wallMs: endedWallMs, aborted: result.aborted });
  signals.close();
  const stopped = result.aborted || result.stoppedBecause !== undefined;
  closeRunFolder(dir, () =>
    writeManifest!({
      status: result.failure !== undefined ? 'failed' : stopped ? 'aborted' : 'complete',
      ...(result.stoppedBecause === undefined ? {} : { stopped_because: result.stoppedBecause }),
      ...(result.failure === undefined ? {} : { error: result.failure.message }),
      safety: { limits: loaded.config.safety, trips: result.ends.flatMap((e) => e.trips) },
      ended_at: new Date(endedWallMs).toISOString(),
      sim_seconds: Number((simMs / 1000).toFixed(3)),
      wall_seconds: Number(wallSeconds.toFixed(3)),
      link_stats: linkStats,
      trial_blocks: { trials: plan.blockTrials, blocks: blocks.length, threads: Math.min(jobs, blocks.length) },
      ...(sequential === undefined ? {} : { sequential: sequential.report(options.trials, result.aborted) }),
      traces: [],
      summary: summary.summaries(),
      listener_failures: [...bus.listenerFailures.map((f) => String(f.error)), ...result.ends.flatMap((e) => e.listenerFailures)],
    }),
  signals.plots,
  );
  if (result.failure !== undefined) throw result.failure;
  return {
    runId,
    dir,
    summary,
    simSeconds: simMs / 1000,
    wallSeconds,
    clockKind: 'virtual',
    aborted: result.aborted,
    ...(result.stoppedBecause === undefined ? {} : { stoppedBecause: result.stoppedBecause }),
    ...(sequential === undefined ? {} : { sequential: sequential.report(options.trials, result.aborted).scenarios }),
  };
}
