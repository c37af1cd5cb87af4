/**
 * The run's side of trial blocks (harness/blocks.ts): hands the blocks out to this thread and to
 * worker threads, and gives their trials back in plan order, whatever order they finish in.
 *
 * - This thread runs blocks too: a run needs no worker to start before its first trial, and with
 *   `jobs` threads in all the run uses `jobs` cores.
 * - Trials are given back in plan order, each with its events and signals; the stops a single rig
 *   would make (a scenario's sequential test deciding, a safety stop with `onBreach: abort`) are
 *   applied at the same place in that order, so the results do not depend on `jobs`.
 * - An abort (Ctrl-C) stops every block at once: each trial in progress ends aborted, and every
 *   trial that finished is given back, in plan order.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { bundle } from '../bin/bundle.js';
import type { DeviceInfo } from '../drivers/types.ts';
import { runBlock, type Block, type BlockControl, type BlockEnd, type BlockJob, type BlockMessage } from './blocks.ts';
import { DexhilError } from './errors.ts';
import type { TrialSignals } from '../reports/signals.ts';
import type { HarnessEvent, TrialRecord } from './events.ts';
import type { ScenarioDef } from './scenario.ts';
import type { runNamedBlock, ToWorker } from './block-worker.ts';

export interface PoolOptions {
  blocks: readonly Block[];
  job(block: Block): BlockJob;
  scenario(name: string): ScenarioDef;
  /** Threads running blocks, this one included (1: only this one). */
  jobs: number;
  /**
   * Whether every scenario is the registry's own (scenarios/index.ts). Code loaded apart from this
   * thread's (a worker thread, the bundle) finds scenarios by name there; otherwise every block
   * runs in this thread, with the code and scenarios it was given.
   */
  registered: boolean;
  /** Told once, with the first block rig's devices, before any trial. */
  onReady(devices: DeviceInfo[]): void;
  /**
   * Told each recorded trial in plan order: its events (trial-start to trial-end) and signals.
   * Returns true to end the trial's scenario here (its later trials are not recorded).
   */
  onTrial(record: TrialRecord, events: HarnessEvent[], signals: TrialSignals): boolean;
  /** Events outside trials (a fault that ended a block), in plan order. */
  onEvents(events: HarnessEvent[]): void;
  onNotice(text: string): void;
}

export interface PoolResult {
  /** The end of every block that ran, in plan order. */
  ends: BlockEnd[];
  aborted: boolean;
  stoppedBecause?: string;
  /** The first block that failed (its rig did not start, a worker thread died), if one did. */
  failure?: DexhilError;
}

interface BlockState {
  block: Block;
  state: 'waiting' | 'running' | 'ended' | 'cancelled';
  trials: Extract<BlockMessage, { kind: 'trial' }>[];
  delivered: number;
  end?: BlockEnd;
  control?: BlockControl;
  /** Why a running block is stopped early (its results will not be recorded). */
  cancelled?: string;
}

/**
 * The code that runs blocks, in worker threads and in this one: the bundle's (bin/bundle.js). A
 * worker that loaded the harness's TypeScript through tsx would take about 0.7 s of both cores to
 * start, as long as a few blocks; from the bundle it starts in about 0.3 s. This thread runs its
 * blocks from the bundle too when the run itself was loaded through tsx (tests, `npm run bench`).
 * Where the bundle cannot be built or written, blocks run through tsx, and the run says so;
 * with DEXHIL_FROM_SOURCES=1 they do so without a word.
 */
type BlockCode = { file: URL } | { sources: true; failed?: string };

/** Defined (as true) by the build in bin/bundle.js: this code runs from the bundle, not from the sources. */
declare const DEXHIL_BUNDLED: true | undefined;
const BUNDLED = typeof DEXHIL_BUNDLED !== 'undefined';

async function bundledBlockCode(): Promise<BlockCode> {
  if (process.env.DEXHIL_FROM_SOURCES === '1') return { sources: true };
  try {
    return { file: (await bundle())['block-worker'] };
  } catch (err) {
    return { sources: true, failed: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

/** Worker code that loads the block code through tsx (when it could not be bundled). */
function throughTsx(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./block-worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
}

/**
 * V8 compiles hot code again in every thread that runs blocks, on helper threads of its own. With
 * a core to spare those compiles cost the run nothing; when every core runs blocks they take turns
 * with the trials: in a 3 x 100 run on two cores they were a third of the process's CPU time.
 * There a smaller inlining budget for the optimising compiler (920 bytecode bytes inlined per
 * function by default) is the better trade: it halves the compile time and the trials run a
 * little slower once compiled. Measured on two cores (3 x 100, seed 1, alternated runs): 2.18 ->
 * 2.06 s with two threads (eight each); with one thread the same budget is slower (2.35 -> 2.52 s,
 * six each), so it is set only when no core is left over. The flag is the process's (every
 * thread's) from then on; it changes how fast the code runs, never what it computes (the tests
 * compare the rows of one thread and of several).
 */
function leaveTheCompilerLess(): void {
  setFlagsFromString('--max-inlined-bytecode-size-cumulative=300');
}

/** Runs one block and tells `send` as it goes (harness/blocks.ts); never throws. */
type RunBlockFn = (job: BlockJob, send: (m: BlockMessage) => void, onControl: (c: BlockControl) => void) => Promise<void>;

export class BlockPool {
  private readonly states: BlockState[];
  private cursor = 0;
  private ready = false;
  private aborted = false;
  private abortReason = '';
  private stopReason: string | undefined;
  private failure: DexhilError | undefined;
  private readonly stoppedScenarios = new Set<string>();
  private readonly workers = new Set<Worker>();

  constructor(private readonly options: PoolOptions) {
    this.states = options.blocks.map((block) => ({ block, state: 'waiting', trials: [], delivered: 0 }));
  }

  /** Runs every block; resolves when all have ended and their trials were given back. Never rejects. */
  async run(): Promise<PoolResult> {
    const helpers = this.options.registered ? Math.max(0, Math.min(this.options.jobs, this.states.length) - 1) : 0;
    if (helpers > 0 && helpers + 1 >= availableParallelism()) leaveTheCompilerLess();
    const code: BlockCode = this.options.registered ? await bundledBlockCode() : { sources: true };
    if ('sources' in code && code.failed !== undefined) this.options.onNotice(`trial blocks run through tsx, more slowly: their code could not be bundled (${code.failed})`);
    try {
      await Promise.all([this.runHere(code), ...Array.from({ length: helpers }, () => this.runWorker(code))]);
    } finally {
      await Promise.all([...this.workers].map((w) => w.terminate()));
    }
    this.flush(true);
    return {
      ...(this.failure === undefined ? {} : { failure: this.failure }),
      ends: this.states.flatMap((s) => (s.end === undefined ? [] : [s.end])),
      aborted: this.aborted,
      ...(this.stopReason === undefined && !this.aborted ? {} : { stoppedBecause: this.stopReason ?? this.abortReason }),
    };
  }

  /** Stops every block now: trials in progress end aborted; no other block starts. */
  abort(reason: string): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    for (const s of this.states) {
      if (s.state === 'waiting') s.state = 'cancelled';
      else if (s.state === 'running') s.control?.abort(reason);
    }
  }

  /** The next block to run, in plan order. */
  private take(): BlockState | undefined {
    const s = this.states.find((x) => x.state === 'waiting');
    if (s !== undefined) s.state = 'running';
    return s;
  }

  /** The block code for this thread: the bundle's, or the code loaded through tsx. */
  private async hereCode(code: BlockCode): Promise<RunBlockFn> {
    const loaded: RunBlockFn = (job, send, onControl) => runBlock(job, this.options.scenario(job.block.scenario), send, onControl);
    if (BUNDLED || 'sources' in code) return loaded;
    try {
      return ((await import(code.file.href)) as { runNamedBlock: typeof runNamedBlock }).runNamedBlock;
    } catch (err) {
      this.options.onNotice(`trial blocks run through tsx, more slowly: their bundle ${fileURLToPath(code.file)} did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
      return loaded;
    }
  }

  private async runHere(code: BlockCode): Promise<void> {
    const run = await this.hereCode(code);
    for (let s = this.take(); s !== undefined; s = this.take()) {
      const st = s;
      // A copy, as a worker thread gets one: nothing a block does to its job reaches the next.
      await run(structuredClone(this.options.job(st.block)), (m) => this.onMessage(m), (c) => {
        st.control = c;
        if (this.aborted) c.abort(this.abortReason);
        else if (st.cancelled !== undefined) c.abort(st.cancelled);
      });
    }
  }

  private async runWorker(code: BlockCode): Promise<void> {
    const worker = 'file' in code ? new Worker(code.file) : new Worker(throughTsx(), { eval: true });
    this.workers.add(worker);
    let up!: () => void;
    const started = new Promise<void>((resolve) => (up = resolve));
    let blockDone: (() => void) | undefined;
    const post = (m: ToWorker): void => worker.postMessage(m);
    const lost = (why: string): void => {
      this.fail(new DexhilError('INTERNAL', `a worker thread running trial blocks stopped: ${why}`, { hint: 'run with --jobs 1 to run every trial in one thread, and report this' }));
      up();
      blockDone?.();
    };
    worker.on('message', (m: BlockMessage | { kind: 'up' }) => {
      if (m.kind === 'up') return up();
      this.onMessage(m);
      if (m.kind === 'end' || m.kind === 'failed') blockDone?.();
    });
    worker.on('error', (err) => lost(err instanceof Error ? err.message : String(err)));
    worker.on('exit', (code) => {
      if (this.workers.has(worker)) lost(`it exited with code ${code}`);
    });
    await started;
    for (let s = this.failure === undefined ? this.take() : undefined; s !== undefined; s = this.failure === undefined ? this.take() : undefined) {
      const st = s;
      st.control = { abort: (reason) => post({ kind: 'abort', reason }) };
      await new Promise<void>((resolve) => {
        blockDone = resolve;
        post({ kind: 'run', job: this.options.job(st.block) });
        if (this.aborted) st.control?.abort(this.abortReason);
      });
      blockDone = undefined;
      if (st.end === undefined && st.state === 'running') st.state = 'ended';
    }
    this.workers.delete(worker);
    await worker.terminate();
  }

  private fail(err: DexhilError): void {
    this.failure ??= err;
    this.abort(err.message);
  }

  private onMessage(m: BlockMessage): void {
    const st = this.states[m.index]!;
    switch (m.kind) {
      case 'ready':
        if (!this.ready) {
          this.ready = true;
          this.options.onReady(m.devices);
        }
        break;
      case 'trial':
        st.trials.push(m);
        break;
      case 'notice':
        this.options.onNotice(m.text);
        break;
      case 'failed':
        st.state = 'ended';
        this.fail(new DexhilError(m.error.code, m.error.message, m.error.hint === undefined ? {} : { hint: m.error.hint }));
        break;
      case 'end':
        st.end = m;
        if (st.state === 'running') st.state = 'ended';
        // A stop the block's own rig made (a safety stop, onBreach: abort) ends the run after it,
        // in plan order: later blocks will not be recorded, so they need not run on.
        if (m.stoppedBecause !== undefined && !m.aborted) this.cancelAfter(m.index);
        break;
    }
    this.flush(false);
  }

  /** Blocks after `index` in plan order will not be recorded: stop them. */
  private cancelAfter(index: number, scenario?: string): void {
    for (const s of this.states.slice(index + 1)) {
      if (scenario !== undefined && s.block.scenario !== scenario) continue;
      if (s.state === 'waiting') s.state = 'cancelled';
      else if (s.state === 'running') {
        s.cancelled = scenario === undefined ? 'the run stops before this block' : `${scenario} stops before this block`;
        s.control?.abort(s.cancelled);
      }
    }
  }

  /**
   * Gives back what can be given in plan order. `final`: every block has ended; an aborted run
   * gives back every trial that finished, around the gaps the abort left.
   */
  private flush(final: boolean): void {
    if (!this.ready) return;
    while (this.cursor < this.states.length && this.stopReason === undefined) {
      const st = this.states[this.cursor]!;
      for (; st.delivered < st.trials.length; st.delivered++) {
        const m = st.trials[st.delivered]!;
        if (this.stoppedScenarios.has(st.block.scenario)) continue;
        const end = m.events[m.events.length - 1];
        if (end?.type !== 'trial-end') continue;
        if (this.options.onTrial(end.record, m.events, m.signals)) {
          this.stoppedScenarios.add(st.block.scenario);
          this.cancelAfter(st.block.index, st.block.scenario);
        }
      }
      const ended = st.state === 'ended' || st.state === 'cancelled';
      if (!ended && !final) return;
      if (st.end !== undefined && !this.stoppedScenarios.has(st.block.scenario)) {
        if (st.end.events.length > 0) this.options.onEvents(st.end.events);
        if (st.end.stoppedBecause !== undefined && !st.end.aborted) this.stopReason = st.end.stoppedBecause;
      }
      this.cursor++;
    }
  }
}
