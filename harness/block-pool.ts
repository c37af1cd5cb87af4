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
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DeviceInfo } from '../drivers/types.ts';
import { runBlock, type Block, type BlockControl, type BlockEnd, type BlockJob, type BlockMessage } from './blocks.ts';
import { DexhilError } from './errors.ts';
import type { HarnessEvent, TrialRecord } from './events.ts';
import type { ScenarioDef } from './scenario.ts';
import type { ToWorker } from './block-worker.ts';

export interface PoolOptions {
  blocks: readonly Block[];
  job(block: Block): BlockJob;
  scenario(name: string): ScenarioDef;
  /** Threads running blocks, this one included (1: only this one). */
  jobs: number;
  /** Told once, with the first block rig's devices, before any trial. */
  onReady(devices: DeviceInfo[]): void;
  /**
   * Told each recorded trial in plan order: its events (trial-start to trial-end) and signals.csv
   * rows. Returns true to end the trial's scenario here (its later trials are not recorded).
   */
  onTrial(record: TrialRecord, events: HarnessEvent[], signals: string): boolean;
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
 * The code a worker thread runs. A worker must load the harness's TypeScript again; through tsx's
 * loader that takes about 0.7 s of both cores, as long as a few blocks. So the worker module is
 * bundled once a run with esbuild (the compiler tsx itself uses, about 40 ms) into one file beside
 * the packages it imports, and a worker starts in about 0.3 s. Each module keeps its own
 * `import.meta.url`, so files found relative to it (the KCD, the socketcan addon) are found as
 * under tsx. Where the bundle cannot be written, workers start through tsx.
 */
let workerCode: Promise<{ file: URL } | { eval: string }> | undefined;

function workerEntry(): Promise<{ file: URL } | { eval: string }> {
  workerCode ??= bundleWorker().catch(() => {
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./block-worker.ts', import.meta.url).href;
    return { eval: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });` };
  });
  return workerCode;
}

async function bundleWorker(): Promise<{ file: URL }> {
  const esbuild = await import('esbuild');
  const keepOwnUrl: import('esbuild').Plugin = {
    name: 'own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => ({
        contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: 'ts',
      }));
    },
  };
  const out = await esbuild.build({
    entryPoints: [fileURLToPath(new URL('./block-worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    write: false,
    logLevel: 'silent',
    plugins: [keepOwnUrl],
  });
  const code = out.outputFiles[0]!.text;
  // Beside node_modules, so the bundle's package imports resolve; named by content, so runs share it.
  const dir = fileURLToPath(new URL('../node_modules/.cache/dexhil/', import.meta.url));
  const file = path.join(dir, `block-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, file);
  }
  return { file: pathToFileURL(file) };
}

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
    const helpers = Math.max(0, Math.min(this.options.jobs, this.states.length) - 1);
    try {
      await Promise.all([this.runHere(), ...Array.from({ length: helpers }, () => this.runWorker())]);
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

  private async runHere(): Promise<void> {
    for (let s = this.take(); s !== undefined; s = this.take()) {
      const st = s;
      await runBlock(this.options.job(st.block), this.options.scenario(st.block.scenario), (m) => this.onMessage(m), (c) => {
        st.control = c;
        if (this.aborted) c.abort(this.abortReason);
        else if (st.cancelled !== undefined) c.abort(st.cancelled);
      });
    }
  }

  private async runWorker(): Promise<void> {
    const entry = await workerEntry();
    const worker = 'file' in entry ? new Worker(entry.file) : new Worker(entry.eval, { eval: true });
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
