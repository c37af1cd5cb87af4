/**
 * A worker thread that runs trial blocks (harness/blocks.ts) for the run in the main thread: it
 * takes `run` messages, one block at a time, and answers with the block's messages; `abort` stops
 * the block in progress.
 */
import { parentPort } from 'node:worker_threads';
import { findScenario } from '../scenarios/index.ts';
import { runBlock, type BlockControl, type BlockJob } from './blocks.ts';

export type ToWorker = { kind: 'run'; job: BlockJob } | { kind: 'abort'; reason: string };

const port = parentPort;
if (port === null) throw new Error('harness/block-worker.ts runs in a worker thread');
let control: BlockControl | undefined;
/** Why to abort, when that came while the block's rig was still starting. */
let early: string | undefined;

port.on('message', (m: ToWorker) => {
  if (m.kind === 'run') {
    const scenario = findScenario(m.job.block.scenario);
    if (scenario === undefined) {
      port.postMessage({ kind: 'failed', index: m.job.block.index, error: { code: 'SCENARIO_UNKNOWN', message: `no scenario named '${m.job.block.scenario}' in the worker` } });
      return;
    }
    early = undefined;
    void runBlock(m.job, scenario, (msg) => port.postMessage(msg), (c) => {
      control = c;
      if (early !== undefined) c.abort(early);
    }).then(() => {
      control = undefined;
    });
  } else if (control === undefined) early = m.reason;
  else control.abort(m.reason);
});
port.postMessage({ kind: 'up' });
