/**
 * Trial blocks: how a run on simulated devices is cut up so it can use every core.
 *
 * A simulated run's plan (scenarios x trials) is cut into fixed blocks of BLOCK_TRIALS trials of one
 * scenario. Each block runs on a simulated rig of its own, brought up fresh and seeded by (run
 * seed, scenario, block number), with its own virtual clock started at the run's start: as if a
 * row of identical simulated rigs ran side by side. A block's rows therefore depend on the seed
 * and the block alone, never on which thread ran it or what ran before, so the run's files are
 * the same for any number of worker threads, and a resumed run reruns a block to give back the
 * very rows it lost.
 *
 * This module is the rig side: it runs one block (in a worker thread or in the run's own thread)
 * and says what happened as messages; harness/block-pool.ts hands blocks out and puts the results
 * back in plan order.
 */
import { hash32 } from '../drivers/sim/rng.ts';
import type { DeviceInfo, LinkStats } from '../drivers/types.ts';
import { SignalCollector, type TrialSignals } from '../reports/signals.ts';
import type { LoadedRig } from './config.ts';
import { DexhilError, type ErrorCode } from './errors.ts';
import { EventBus, type HarnessEvent } from './events.ts';
import { createRig } from './rig.ts';
import { Runner } from './runner.ts';
import { superviseRig, type SafetyTrip } from './safety.ts';
import type { ScenarioDef } from './scenario.ts';

/** Trials in a block: small enough to share the plan out evenly, large enough that bring-up is noise. */
export const BLOCK_TRIALS = 25;

export interface Block {
  /** Position in the plan (0-based): results are recorded in this order. */
  index: number;
  scenario: string;
  /** Block number within its scenario (0-based): part of the rig's seed. */
  n: number;
  /** First and last trial index (1-based, inclusive). */
  first: number;
  last: number;
}

/** The plan's blocks, in plan order: each scenario's trials in blocks of `size`. */
export function planBlocks(scenarios: readonly string[], trials: number, size = BLOCK_TRIALS): Block[] {
  const blocks: Block[] = [];
  for (const scenario of scenarios) {
    for (let n = 0; n * size < trials; n++) {
      blocks.push({ index: blocks.length, scenario, n, first: n * size + 1, last: Math.min(trials, (n + 1) * size) });
    }
  }
  return blocks;
}

/** The seed of a block's simulated rig (its device noise and timing). */
export function blockSeed(seed: number, scenario: string, n: number): number {
  return hash32(`block/${seed}/${scenario}/${n}`);
}

/** Everything a thread needs to run a block (plain data: it crosses to worker threads). */
export interface BlockJob {
  /**
   * The rig as the run loaded it (config, profile, work cell, the arms' CAN databases): every
   * block runs on the files as they were when the run started, even if one is edited meanwhile,
   * and a worker thread needs no YAML parser, schema library or KCD parser of its own.
   */
  rig: LoadedRig;
  runId: string;
  /** The run's seed (initial conditions and trial dynamics are seeded by it, as on any rig). */
  seed: number;
  /** Wall-clock epoch of the block rig's virtual time 0: the run's start. */
  epochMs: number;
  block: Block;
  /** Trials of the block already on disk (a resumed run): run, so the others are as they were, but not reported. */
  onDisk: number[];
}

/** What the block's rig was at its end, for the run's devices.csv and manifest. */
export interface BlockEnd {
  kind: 'end';
  index: number;
  /** Simulated time the block's rig ran, from bring-up to close (ms). */
  simMs: number;
  linkStats: Record<string, LinkStats>;
  reconnects: Record<string, number>;
  trips: SafetyTrip[];
  listenerFailures: string[];
  /** Events after the block's last trial (e.g. a fault that ended it). */
  events: HarnessEvent[];
  aborted: boolean;
  stoppedBecause?: string;
}

export type BlockMessage =
  | { kind: 'ready'; index: number; devices: DeviceInfo[] }
  /** One finished trial: its events from trial-start to trial-end, and its signals (rows and plot). */
  | { kind: 'trial'; index: number; events: HarnessEvent[]; signals: TrialSignals }
  | { kind: 'notice'; index: number; text: string }
  | BlockEnd
  | { kind: 'failed'; index: number; error: { code: ErrorCode; message: string; hint?: string } };

/** Control of a block in progress: the pool aborts it (Ctrl-C, or its results are not needed). */
export interface BlockControl {
  abort(reason: string): void;
}

/**
 * Runs one block: brings its rig up, runs its trials with a safety supervisor, closes the rig.
 * Tells `send` as it goes; never throws (a failure is a `failed` message). `onControl` gets the
 * block's control once its runner exists.
 */
export async function runBlock(job: BlockJob, scenario: ScenarioDef, send: (m: BlockMessage) => void, onControl: (c: BlockControl) => void = () => undefined): Promise<void> {
  const { block } = job;
  const index = block.index;
  try {
    const loaded = job.rig;
    const rig = await createRig(loaded, { seed: blockSeed(job.seed, block.scenario, block.n), epochMs: job.epochMs });
    send({ kind: 'ready', index, devices: [...rig.devices] });
    const bus = new EventBus();
    const signals = new SignalCollector(rig);
    const onDisk = new Set(job.onDisk);
    let events: HarnessEvent[] = [];
    bus.subscribe((e) => {
      events.push(e);
      const trial = signals.observe(e, job.runId);
      if (e.type !== 'trial-end') return;
      if (!onDisk.has(e.record.trial)) send({ kind: 'trial', index, events, signals: trial ?? { rows: '', plot: {} } });
      events = [];
    });
    let runner: Runner | undefined;
    const supervisor = superviseRig(rig, loaded.config, () => runner, (text) => send({ kind: 'notice', index, text }));
    runner = new Runner(rig, bus, supervisor);
    onControl(runner);
    try {
      for (let t = block.first; t <= block.last && !runner.wasAborted && runner.stoppedBecause === undefined; t++) {
        if ((await runner.runJob(scenario, t, job.seed)) === undefined) break;
      }
    } finally {
      const simMs = rig.clock.nowMs();
      supervisor.close();
      signals.close();
      await rig.close();
      send({
        kind: 'end',
        index,
        simMs,
        linkStats: rig.linkStats(),
        reconnects: rig.reconnects(),
        trips: supervisor.trips,
        listenerFailures: bus.listenerFailures.map((f) => String(f.error)),
        events,
        aborted: runner.wasAborted,
        ...(runner.stoppedBecause === undefined ? {} : { stoppedBecause: runner.stoppedBecause }),
      });
    }
  } catch (err) {
    const e = err instanceof DexhilError ? err : undefined;
    send({ kind: 'failed', index, error: { code: e?.code ?? 'INTERNAL', message: err instanceof Error ? err.message : String(err), ...(e?.hint === undefined ? {} : { hint: e.hint }) } });
  }
}
