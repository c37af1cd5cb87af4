/**
 * One run, end to end: load the rig config, build the rig, wire the recorders to the event
 * stream, run the scenarios, write the manifest and the summary, close the rig.
 */
import path from 'node:path';
import type { SimWorld } from '../drivers/sim/world/index.ts';
import { CsvRecorder } from '../reports/csv-recorder.ts';
import { SignalRecorder } from '../reports/signals.ts';
import { TraceRecorder, type TraceMode } from '../reports/traces.ts';
import type { SprtDesign } from '../analysis/sequential.ts';
import { BLOCK_TRIALS } from './blocks.ts';
import { loadRig, type LoadedRig } from './config.ts';
import { runBlocks } from './run-blocks.ts';
import { closeRunFolder, deviceHealth, harnessVersion, makeRunFolder, makeRunId, manifestWriter, ROOT, writeStartingManifest, type RunDescription } from './run-folder.ts';
import type { ResumeState, RunSettings } from './resume.ts';
import { watchLinks, type LinkCheck } from './doctor.ts';
import { DexhilError } from './errors.ts';
import { EventBus, type HarnessEvent, type RunInfo } from './events.ts';
import { publicUrl, type MqttSettings } from './mqtt-connection.ts';
import { MqttLink, type MqttCounters } from './mqtt.ts';
import { createRig } from './rig.ts';
import { resolveRig, scenariosFor } from './rig-plan.ts';
import { Runner } from './runner.ts';
import { superviseRig } from './safety.ts';
import type { ScenarioDef } from './scenario.ts';
import type { TrialFeed } from './fleet-worker.ts';
import { OperatorDesk, TerminalPlace } from './operator.ts';
import { sequentialPlan, type SequentialResult } from './sequential-plan.ts';
import { SummaryCollector } from './summary.ts';

export const DEFAULT_RIG = path.join(ROOT, 'fixtures/rigs/sim.yaml');

export interface RunOptions {
  rigFile: string;
  /** Sim profile replacing the rig config's (a simulated firmware build). */
  profileFile?: string;
  scenarios: readonly ScenarioDef[];
  trials: number;
  seed: number;
  /** Run folder; default reports/runs/<run-id>. */
  outDir?: string;
  /** Extra listeners (progress output, tests). */
  listeners?: ((e: HarnessEvent) => void)[];
  /** Fixed wall-clock epoch for the virtual clock (tests). */
  epochMs?: number;
  /** The scene behind in-process emulators (tests); see createRig. */
  world?: SimWorld;
  /** Where rig-factory notices go (the CLI prints them on stderr). */
  notice?: (text: string) => void;
  /** Live status, results, telemetry and operator commands over MQTT (harness/mqtt.ts). */
  mqtt?: MqttSettings;
  /** Raw traces (traces/ in the run folder); default `auto`: when a real device is in the rig. */
  trace?: TraceMode;
  /**
   * Seconds the links are watched before the first trial (the doctor's check on the whole rig);
   * a device that fails it stops the run before it starts. Default: 2 with a real device, else 0.
   */
  preflightSeconds?: number;
  /**
   * Build B against a baseline run folder (build A): trials pair by initial-condition id, and
   * with `stopWhenDecided` each scenario stops once the sequential test decides.
   */
  baseline?: { dir: string; design: SprtDesign; stopWhenDecided: boolean };
  /** Continue this interrupted run (prepareResume): its folder, id and the trials on disk. */
  resume?: ResumeState;
  /**
   * Trials handed out one at a time (a fleet worker, harness/fleet.ts) instead of `scenarios` x
   * `trials`; needs `mqtt`. The run lasts until the feed ends or the run is aborted.
   */
  feed?: TrialFeed;
  /** Another id for the rig than its config's (several fleet workers from one rig file). */
  rigId?: string;
  /** `operator`: a person gives every scenario's verdict (as a scenario with `judge: operator`). */
  judge?: 'operator';
  /**
   * Where operator questions are asked besides MQTT: a terminal's input and output. Default: this
   * process's stdin and stderr when stdin is a terminal; `false`: nowhere.
   */
  terminal?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream } | false;
  /**
   * Threads that run a simulated run's trial blocks (harness/blocks.ts), this one included;
   * default: one per 6 blocks (150 trials), up to one per core. The results are the same for any number.
   */
  jobs?: number;
}

/** What stops a run from outside (Ctrl-C): the runner of a rig, or the pool of trial blocks. */
export interface RunControl {
  abort(reason: string): void;
}

/**
 * Trials per block when the run goes in trial blocks (harness/blocks.ts), else undefined. A run
 * goes in blocks when all its devices are simulated in this process and nothing outside follows
 * or steers it trial by trial on one rig: no MQTT, fleet, operator, pre-flight watch or raw traces.
 * A resumed run goes as it went.
 * @throws DexhilError USAGE when a run that went in blocks is resumed with something that needs one rig.
 */
function blockTrialsOf(options: RunOptions, loaded: LoadedRig): number | undefined {
  const oneRig = [
    ...(options.mqtt === undefined ? [] : ['--mqtt']),
    ...(options.feed === undefined ? [] : ['a fleet feed']),
    ...(options.world === undefined ? [] : ['emulated devices']),
    ...(options.judge === 'operator' || options.scenarios.some((s) => s.judge === 'operator') ? ['an operator verdict'] : []),
    ...(loaded.config.rig.reset === 'operator' ? ['rig.reset: operator'] : []),
    ...(options.trace === 'on' ? ['--trace on'] : []),
    ...((options.preflightSeconds ?? 0) > 0 ? ['a pre-flight watch'] : []),
  ];
  if (options.resume !== undefined) {
    const went = options.resume.settings.block_trials;
    if (went !== undefined && oneRig.length > 0) {
      throw new DexhilError('USAGE', `--resume: ${options.resume.dir} ran in trial blocks on simulated rigs, which ${oneRig.join(' and ')} cannot follow`, { hint: `resume it without ${oneRig.join(', ')}` });
    }
    return went;
  }
  return oneRig.length === 0 && resolveRig(loaded).simulatedOnly ? BLOCK_TRIALS : undefined;
}

export interface RunResult {
  runId: string;
  dir: string;
  summary: SummaryCollector;
  simSeconds: number;
  wallSeconds: number;
  clockKind: 'real' | 'virtual';
  aborted: boolean;
  /** Why the run ended before its plan was done (e.g. `safety.onBreach: abort`), if it did. */
  stoppedBecause?: string;
  /** Per scenario, when run against a baseline with a sequential test. */
  sequential?: SequentialResult[];
}

/** Runs the plan; the returned promise settles after the rig is closed and reports are flushed. */
export async function runPlan(options: RunOptions, control?: { onRunner?: (r: RunControl) => void }): Promise<RunResult> {
  const loaded = loadRig(options.rigFile, options.profileFile === undefined ? {} : { profile: options.profileFile });
  if (options.rigId !== undefined) loaded.config.rig.id = options.rigId;
  // The baseline is checked before any device is opened: a run that cannot pair fails at once.
  const sequential = options.baseline === undefined ? undefined : sequentialPlan(options.baseline, options.seed, options.scenarios);
  const { resume } = options;
  const runId = resume?.runId ?? makeRunId(loaded.config.rig.id, options.seed);
  const dir = resume?.dir ?? makeRunFolder(runId, options.outDir);
  const { version, commit } = harnessVersion();
  const settings: RunSettings = {
    rig_file: path.resolve(options.rigFile),
    ...(options.profileFile === undefined ? {} : { profile_file: path.resolve(options.profileFile) }),
    scenarios: options.scenarios.map((s) => s.name),
    trials: options.trials,
    seed: options.seed,
    trace: options.trace ?? 'auto',
    ...(options.preflightSeconds === undefined ? {} : { preflight_seconds: options.preflightSeconds }),
    ...(options.baseline === undefined ? {} : { baseline: { ...options.baseline, dir: path.resolve(options.baseline.dir) } }),
    ...(options.judge === undefined ? {} : { judge: options.judge }),
  };
  const blockTrials = blockTrialsOf(options, loaded);
  if (blockTrials !== undefined) settings.block_trials = blockTrials;
  const described: RunDescription = { dir, runId, loaded, settings, resume, version, commit };
  if (blockTrials !== undefined) return runBlocks(options, { loaded, described, sequential, blockTrials }, control);
  if (options.feed !== undefined && options.mqtt === undefined) throw new DexhilError('USAGE', 'a fleet worker takes its trials over MQTT: it needs a broker');
  // MQTT before any device: a bad option is said at once, and the rig shows online during bring-up.
  const link = options.mqtt === undefined ? undefined : new MqttLink(options.mqtt, loaded.config.rig.id, options.notice);
  // Operator questions (scene resets, verdicts) need somewhere to be asked: said now, not at trial 1.
  const desk = new OperatorDesk();
  const terminal = options.terminal ?? (process.stdin.isTTY ? { input: process.stdin, output: process.stderr } : false);
  if (terminal !== false) desk.add(new TerminalPlace(desk, terminal.input, terminal.output));
  if (link !== undefined) link.attachDesk(desk);
  const asks = [
    ...(loaded.config.rig.reset === 'operator' ? [`${options.rigFile} has rig.reset: operator`] : []),
    ...options.scenarios.filter((s) => (options.judge ?? s.judge) === 'operator').map((s) => `${s.name} is judged by an operator`),
  ];
  if (asks.length > 0 && desk.placeNames.length === 0) {
    await link?.close();
    throw new DexhilError('USAGE', `${asks.join('; ')}, but there is no terminal (stdin is not one) and no MQTT command topic to answer on`, {
      hint: 'run on a terminal, or add --mqtt <url> --mqtt-user <user> --mqtt-password-file <file> and answer with reset-done / verdict commands',
    });
  }
  writeStartingManifest(described);
  const traces = new TraceRecorder(dir, options.trace ?? 'auto', resume !== undefined);
  const rig = await createRig(loaded, {
    seed: options.seed,
    traces,
    ...(options.epochMs === undefined ? {} : { epochMs: options.epochMs }),
    ...(options.world === undefined ? {} : { world: options.world }),
    ...(options.notice === undefined ? {} : { notice: options.notice }),
  }).catch(async (err: unknown) => {
    traces.close(); // a failed bring-up's traffic is what explains it
    await link?.close();
    throw err;
  });
  const bus = new EventBus();
  const csv = new CsvRecorder(dir, () => traces.lastSlice, resume !== undefined);
  const summary = new SummaryCollector();
  for (const record of resume?.records ?? []) summary.listener({ type: 'trial-end', record });
  const signals = new SignalRecorder(dir, rig, resume !== undefined);
  bus.subscribe(traces.listener); // before the CSV recorder: traces are on disk before their trial's row
  bus.subscribe(signals.listener); // the same for the signals around a trial's events
  bus.subscribe(csv.listener);
  bus.subscribe(summary.listener);
  for (const l of options.listeners ?? []) bus.subscribe(l);
  if (link !== undefined) {
    bus.subscribe(link.listener);
    link.attachRig(rig);
  }
  /** Ends a run that stops before its first trial: devices closed, traces kept, nothing left running. */
  const abandon = async (): Promise<void> => {
    signals.close();
    await rig.close();
    traces.close();
    await link?.close();
  };

  const { runnable, skipped } = scenariosFor(loaded.config, options.scenarios);
  const info: RunInfo = {
    runId,
    rigId: rig.id,
    rigMode: rig.mode,
    seed: options.seed,
    clock: rig.clock.kind,
    devices: [...rig.devices],
    scenarios: runnable.map((s) => ({ name: s.name, version: s.version, trials: options.trials })),
    skipped,
    config: loaded.config,
    profile: loaded.profile.name,
    startedWallMs: rig.clock.wallMs(),
  };
  const writeManifest = manifestWriter(described, { id: rig.id, mode: rig.mode, clock: rig.clock.kind, devices: rig.devices, notices: rig.notices }, info);
  writeManifest({ status: 'running' });

  const preflightS = options.preflightSeconds ?? (rig.clock.kind === 'real' ? 2 : 0);
  let preflight: LinkCheck[] | undefined;
  if (preflightS > 0) {
    try {
      preflight = await watchLinks(rig, loaded.config.devices, preflightS);
    } catch (err) {
      await abandon();
      throw err;
    }
    const failed = preflight.filter((c) => c.problems.length > 0);
    if (failed.length > 0) {
      await abandon();
      writeManifest({ status: 'preflight-failed', preflight, traces: traces.files() });
      throw new DexhilError('PREFLIGHT', `pre-flight check of rig ${rig.id} failed, no trial was run: ${failed.map((c) => `${c.device}: ${c.problems.join(', ')}`).join('; ')}`, {
        hint: `\`dexhil doctor --rig ${options.rigFile}\` shows every device's link; the raw traffic is in ${path.join(dir, 'traces')}`,
      });
    }
  }

  // The safety supervisor watches every device from here to the end; scenarios cannot reach it.
  let runnerRef: Runner | undefined;
  const supervisor = superviseRig(rig, loaded.config, () => runnerRef, options.notice);
  const runner = new Runner(rig, bus, supervisor, { desk, ...(options.judge === undefined ? {} : { judge: options.judge }) });
  runnerRef = runner;
  control?.onRunner?.(runner);
  link?.attachRunner(runner);
  if (options.feed !== undefined && link !== undefined) {
    bus.subscribe(options.feed.listener);
    options.feed.attach(link, rig);
  }
  const wall0 = performance.now();
  let simSeconds = 0;
  let wallSeconds = 0;
  bus.emit({ type: 'run-start', run: info });
  for (const sk of skipped) bus.emit({ type: 'scenario-skip', scenario: sk.name, reason: sk.reason });
  try {
    // A fleet worker runs what it is handed until the feed ends; a run, its plan.
    for (let job = await options.feed?.next(runner.abortSignal); job !== undefined; job = await options.feed?.next(runner.abortSignal)) {
      if ((await runner.runJob(job.scenario, job.trial, job.seed)) === undefined) break;
    }
    for (const s of options.feed === undefined ? runnable : []) {
      if (runner.wasAborted) break;
      const stopAfter = sequential?.stopAfter(s.name, options.trials, resume?.records);
      if (stopAfter === 'decided') continue;
      await runner.runScenario(s, options.trials, options.seed, stopAfter, resume?.done.get(s.name));
    }
  } finally {
    simSeconds = rig.clock.nowMs() / 1000;
    wallSeconds = (performance.now() - wall0) / 1000;
    const endedWallMs = rig.clock.wallMs();
    const upS = rig.clock.nowMs() / 1000;
    // Link counters after the close, so they count the closing traffic as the traces do.
    supervisor.close();
    desk.close();
    signals.close();
    await rig.close();
    traces.close();
    const linkStats = rig.linkStats();
    const reconnects = rig.reconnects();
    bus.emit({ type: 'devices', devices: deviceHealth(rig.devices, linkStats, reconnects, upS) });
    bus.emit({ type: 'run-end', runId, tMs: upS * 1000, wallMs: endedWallMs, aborted: runner.wasAborted });
    let mqttCounters: MqttCounters | undefined;
    if (link !== undefined) {
      link.runEnded(summary.summaries(), runner.wasAborted || runner.stoppedBecause !== undefined ? 'aborted' : 'complete');
      mqttCounters = await link.close();
      options.notice?.(`MQTT: ${mqttCounters.published} messages published, ${mqttCounters.dropped} dropped, ${mqttCounters.reconnects} reconnection attempts, ${mqttCounters.commands} commands (${mqttCounters.rejected} rejected)`);
    }
    closeRunFolder(dir, () =>
      writeManifest({
      status: runner.wasAborted || runner.stoppedBecause !== undefined ? 'aborted' : 'complete',
      ...(runner.stoppedBecause === undefined ? {} : { stopped_because: runner.stoppedBecause }),
      safety: { limits: loaded.config.safety, trips: supervisor.trips },
      ended_at: new Date(endedWallMs).toISOString(),
      sim_seconds: Number(simSeconds.toFixed(3)),
      wall_seconds: Number(wallSeconds.toFixed(3)),
      link_stats: linkStats,
      ...(preflight === undefined ? {} : { preflight }),
      ...(sequential === undefined ? {} : { sequential: sequential.report(options.trials, runner.wasAborted) }),
      traces: traces.files(),
      summary: summary.summaries(),
      listener_failures: bus.listenerFailures.map((f) => String(f.error)),
      ...(mqttCounters === undefined ? {} : { mqtt: { url: publicUrl(options.mqtt?.url ?? ''), ...mqttCounters } }),
    }),
    signals.plots,
    );
  }
  return {
    runId,
    dir,
    summary,
    simSeconds,
    wallSeconds,
    clockKind: rig.clock.kind,
    aborted: runner.wasAborted,
    ...(runner.stoppedBecause === undefined ? {} : { stoppedBecause: runner.stoppedBecause }),
    ...(sequential === undefined ? {} : { sequential: sequential.report(options.trials, runner.wasAborted).scenarios }),
  };
}
