/**
 * A fleet worker's side (harness/fleet.ts has the protocol and the coordinator): a rig that takes
 * jobs from the fleet's shared subscription one at a time, runs each as `dexhil run` would, and
 * sends each trial's record back.
 */
import { z } from 'zod';
import { runContext } from '../reports/columns.ts';
import { findScenario } from '../scenarios/index.ts';
import type { AttemptRecord, CorrectionRecord, HarnessEvent } from './events.ts';
import { fleetTopics, jobSchema, type JobMessage } from './fleet.ts';
import type { MqttLink } from './mqtt.ts';
import type { Rig } from './rig.ts';
import type { ScenarioDef } from './scenario.ts';

/** A trial handed to this rig by a fleet coordinator. */
export interface FleetJob {
  scenario: ScenarioDef;
  trial: number;
  seed: number;
}

/** Where a run gets its trials when they are handed out one at a time (runPlan's `feed`). */
export interface TrialFeed {
  /** Starts taking jobs; called once the rig and its MQTT link are up. */
  attach(link: MqttLink, rig: Rig): void;
  /** The next trial; undefined ends the run. Waits while no job is there; `signal` ends the wait. */
  next(signal: AbortSignal): Promise<FleetJob | undefined>;
  /** Sees the run's events (it sends each trial's record back). */
  readonly listener: (e: HarnessEvent) => void;
}

/** The worker's side: takes jobs from the shared subscription one at a time. */
export class FleetWorker implements TrialFeed {
  private link: MqttLink | undefined;
  private rig: Rig | undefined;
  private readonly topics: ReturnType<typeof fleetTopics>;
  private waiting: ((job: JobMessage | undefined) => void) | undefined;
  private queued: JobMessage | undefined;
  private current: JobMessage | undefined;
  private attempts: AttemptRecord[] = [];
  private corrections: CorrectionRecord[] = [];
  private context: { rig_mode: string; firmware: string; clock: string; worker_run: string } | undefined;
  readonly counts = { taken: 0, declined: 0, refused: 0, malformed: 0 };

  constructor(
    private readonly group: string,
    prefix: string,
    private readonly notice: (text: string) => void = () => undefined,
  ) {
    this.topics = fleetTopics(prefix, group);
  }

  attach(link: MqttLink, rig: Rig): void {
    this.link = link;
    this.rig = rig;
    link.setStatus({ state: 'idle', fleet: { group: this.group, busy: false } });
    link.subscribe(this.topics.shared, (payload) => this.onJob(payload));
  }

  private answer(type: 'taken' | 'declined' | 'refused' | 'result', job: JobMessage, body: Record<string, unknown> = {}): void {
    this.link?.publishJson(this.topics.results, { type, job: job.job, fleet_run: job.fleet_run, ...body });
  }

  private onJob(payload: Buffer): void {
    let job: JobMessage;
    try {
      job = jobSchema.parse(JSON.parse(payload.toString('utf8')));
    } catch (err) {
      this.counts.malformed++;
      this.notice(`fleet: ignored a malformed job on ${this.topics.jobs}: ${err instanceof z.ZodError ? (err.issues[0]?.message ?? 'invalid') : 'not JSON'}`);
      return;
    }
    const scenario = findScenario(job.scenario);
    const reason =
      scenario === undefined ? `this harness has no scenario ${job.scenario}`
      : scenario.version !== job.version ? `${job.scenario} is version ${scenario.version} here, the suite asks for ${job.version}`
      : this.rig?.lacks(scenario.needs);
    if (reason !== undefined) {
      this.counts.refused++;
      this.answer('refused', job, { reason });
      return;
    }
    if (this.current !== undefined || this.queued !== undefined) {
      this.counts.declined++;
      this.answer('declined', job, { reason: 'busy' });
      return;
    }
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w(job);
    } else this.queued = job;
  }

  async next(signal: AbortSignal): Promise<FleetJob | undefined> {
    this.current = undefined;
    this.link?.setStatus({ state: 'idle', fleet: { group: this.group, busy: false } });
    let job = this.queued;
    this.queued = undefined;
    if (job === undefined && !signal.aborted) {
      const wait = new Promise<JobMessage | undefined>((resolve) => {
        this.waiting = resolve;
        signal.addEventListener('abort', () => resolve(undefined), { once: true });
      });
      // A simulated world stands still while the rig waits for work.
      job = await (this.rig === undefined ? wait : this.rig.clock.waitOutside(wait));
      this.waiting = undefined;
    }
    if (job === undefined || signal.aborted) return undefined;
    this.current = job;
    this.counts.taken++;
    this.attempts = [];
    this.corrections = [];
    this.answer('taken', job, { worker_run: this.context?.worker_run });
    this.link?.setStatus({ state: 'running', fleet: { group: this.group, busy: true } });
    return { scenario: findScenario(job.scenario)!, trial: job.trial, seed: job.seed };
  }

  readonly listener = (e: HarnessEvent): void => {
    switch (e.type) {
      case 'run-start': {
        const ctx = runContext(e.run);
        this.context = { rig_mode: ctx.rigMode, firmware: ctx.firmware, clock: e.run.clock, worker_run: e.run.runId };
        break;
      }
      case 'attempt-end':
        this.attempts.push(e.record);
        break;
      case 'correction':
        this.corrections.push(e.record);
        break;
      case 'trial-end':
        if (this.current !== undefined) this.answer('result', this.current, { context: this.context, record: e.record, attempts: this.attempts, corrections: this.corrections });
        break;
      default:
        break;
    }
  };
}
