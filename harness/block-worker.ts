/**
 * The code that runs trial blocks (harness/blocks.ts) from the run's bundle (harness/block-pool.ts):
 * `runNamedBlock` runs one block of a registered scenario. In a worker thread the module also
 * serves the run in the main thread: it takes `run` messages, one block at a time, and answers
 * with the block's messages; `abort` stops the block in progress.
 */
import { parentPort } from 'node:worker_threads';
import { findScenario } from '../scenarios/index.ts';
import { runBlock, type BlockControl, type BlockJob, type BlockMessage } from './blocks.ts';

export type ToWorker = { kind: 'run'; job: BlockJob } | { kind: 'abort'; reason: string };

/** Runs one block of a scenario found by name, as `runBlock` does; never throws. */
export async function runNamedBlock(job: BlockJob, send: (m: BlockMessage) => void, onControl: (c: BlockControl) => void): Promise<void> {
  const scenario = findScenario(job.block.scenario);
  if (scenario === undefined) {
    send({ kind: 'failed', index: job.block.index, error: { code: 'SCENARIO_UNKNOWN', message: `no scenario named '${job.block.scenario}' in the trial block code` } });
    return;
  }
  await runBlock(job, scenario, send, onControl);
}

const port = parentPort;
if (port !== null) {
  let control: BlockControl | undefined;
  /** Why to abort, when that came while the block's rig was still starting. */
  let early: string | undefined;
  port.on('message', (m: ToWorker) => {
    if (m.kind === 'run') {
      early = undefined;
      void runNamedBlock(m.job, (msg) => port.postMessage(msg), (c) => {
        control = c;
        if (early !== undefined) c.abort(early);
      }).then(() => {
        control = undefined;
      });
    } else if (control === undefined) early = m.reason;
    else control.abort(m.reason);
  });
  port.postMessage({ kind: 'up' });
}
