/**
 * Several rigs, one suite, over MQTT. The broker does the distributing (an MQTT 5 shared
 * subscription hands each message to one subscriber of a group); dexhil adds no engine of its own.
 *
 *   dexhil fleet serve   the coordinator: offers the suite's trials as jobs, takes the results back
 *                        and writes one merged run folder (the rig id on every row).
 *   dexhil fleet work    a worker (harness/fleet-worker.ts): a rig that runs whatever job it is
 *                        handed, as `dexhil run` would (its own run folder, safety supervisor,
 *                        status and trial topics), and sends each trial's record back.
 *
 * Topics under `<prefix>/fleet/<group>/`, JSON with `v: 1`, QoS 1:
 *
 *   jobs       coordinator -> one worker; workers subscribe `$share/<group>/<prefix>/fleet/<group>/jobs`
 *   results    workers -> coordinator: `taken`, `declined` (busy), `refused` (cannot run it), `result`
 *
 * and each worker's retained `<prefix>/<rig-id>/status`, which carries `fleet: {group, busy}` and
 * whose last will says offline: that is how the coordinator knows who is free and who died.
 *
 * Exactly once: a job is offered only while a worker is free; a job whose worker goes offline, or
 * that no one takes in time, or whose result does not come within the job timeout, is offered
 * again. The first result for a job is written; any later one (a slow worker, not a dead one) is
 * counted and ignored. A result with outcome `aborted` (the worker was stopped) is offered again.
 */
import type { MqttClient } from 'mqtt';
import path from 'node:path';
import { z } from 'zod';
import { writeJunit } from '../reports/junit.ts';
import { writeRunReport } from '../reports/html.ts';
import { CsvRecorder } from '../reports/csv-recorder.ts';
import { findScenario, SCENARIOS } from '../scenarios/index.ts';
import { RealClock, type TimerHandle } from './clock.ts';
import { loadYaml } from './config.ts';
import { DexhilError } from './errors.ts';
import type { AttemptRecord, CorrectionRecord, TrialRecord } from './events.ts';
import { clientOptions, mqttJs, publicUrl, type MqttSettings } from './mqtt-connection.ts';
import { MQTT_SCHEMA_VERSION } from './mqtt.ts';
import { harnessVersion, makeRunFolder, makeRunId, writeAtomic } from './run-folder.ts';
import type { ScenarioDef } from './scenario.ts';
import { SummaryCollector } from './summary.ts';

const suiteSchema = z.strictObject({
  suite: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1 to 64)'),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  trials: z.number().int().positive().default(20),
  scenarios: z.array(z.union([z.string(), z.strictObject({ name: z.string(), trials: z.number().int().positive().optional() })])).min(1),
});

export interface Suite {
  name: string;
  file: string;
  seed: number;
  scenarios: { def: ScenarioDef; trials: number }[];
}

/** Loads a suite file (YAML). @throws DexhilError CONFIG_* naming the file and field. */
export function loadSuite(file: string): Suite {
  const raw = loadYaml(file, suiteSchema, 'suite file');
  const scenarios = raw.scenarios.map((s, i) => {
    const name = typeof s === 'string' ? s : s.name;
    const def = findScenario(name);
    if (def === undefined) {
      throw new DexhilError('CONFIG_INVALID', `${file}: suite file field 'scenarios.${i}': no scenario named '${name}'`, { hint: `\`dexhil list\` shows them: ${SCENARIOS.map((x) => x.name).join(', ')}` });
    }
    return { def, trials: typeof s === 'string' ? raw.trials : (s.trials ?? raw.trials) };
  });
  const names = scenarios.map((s) => s.def.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new DexhilError('CONFIG_INVALID', `${file}: suite file field 'scenarios': ${twice} is listed twice`, { hint: 'give each scenario once, with its trial count' });
  return { name: raw.suite, file: path.resolve(file), seed: raw.seed, scenarios };
}

export function fleetTopics(prefix: string, group: string): { jobs: string; shared: string; results: string; coordinator: string; statuses: string } {
  const base = `${prefix}/fleet/${group}`;
  return { jobs: `${base}/jobs`, shared: `$share/${group}/${base}/jobs`, results: `${base}/results`, coordinator: `${base}/coordinator`, statuses: `${prefix}/+/status` };
}

/** A job: one trial offered to one worker. */
export const jobSchema = z.object({
  v: z.literal(MQTT_SCHEMA_VERSION),
  type: z.literal('job'),
  job: z.string(),
  fleet_run: z.string(),
  scenario: z.string(),
  version: z.string(),
  trial: z.number().int().positive(),
  seed: z.number().int().min(0),
});
export type JobMessage = z.infer<typeof jobSchema>;

const workerMessageSchema = z.object({
  v: z.literal(MQTT_SCHEMA_VERSION),
  type: z.enum(['taken', 'declined', 'refused', 'result']),
  rig: z.string(),
  job: z.string(),
  fleet_run: z.string(),
  reason: z.string().optional(),
  context: z.object({ rig_mode: z.string(), firmware: z.string(), clock: z.string(), worker_run: z.string() }).optional(),
  record: z.record(z.string(), z.unknown()).optional(),
  attempts: z.array(z.record(z.string(), z.unknown())).optional(),
  corrections: z.array(z.record(z.string(), z.unknown())).optional(),
});
type WorkerMessage = z.infer<typeof workerMessageSchema>;

interface Job {
  id: string;
  scenario: ScenarioDef;
  trial: number;
  state: 'waiting' | 'offered' | 'taken' | 'done' | 'skipped';
  /** Wall ms of the last offer, or of the taking. */
  sinceMs: number;
  rig?: string;
  refusedBy: Set<string>;
  skipReason?: string;
}

interface Worker {
  online: boolean;
  busy: boolean;
  trials: number;
}

export interface FleetServeOptions {
  broker: MqttSettings;
  group: string;
  suite: Suite;
  outDir?: string;
  /** A taken job whose result has not come in this long is offered again. */
  jobTimeoutMs: number;
  /** An offered job no worker has taken in this long is offered again. */
  offerTimeoutMs?: number;
  out?: (line: string) => void;
  notice?: (text: string) => void;
  /** Ends the wait early (Ctrl-C): what came back so far is written. */
  signal?: AbortSignal;
}

export interface FleetResult {
  runId: string;
  dir: string;
  summary: SummaryCollector;
  complete: boolean;
  trials: number;
  reoffered: number;
  duplicates: number;
  workers: Record<string, number>;
  skipped: { job: string; reason: string }[];
  simSeconds: number;
  wallSeconds: number;
  clockKind: 'real' | 'virtual';
}

/** The coordinator: offers every trial of the suite once, writes each first result, ends when all are in. */
export async function serveFleet(options: FleetServeOptions): Promise<FleetResult> {
  const { suite, group } = options;
  const prefix = options.broker.prefix ?? 'dexhil';
  const topics = fleetTopics(prefix, group);
  const out = options.out ?? (() => undefined);
  const notice = options.notice ?? (() => undefined);
  const runId = makeRunId(`fleet-${suite.name}`, suite.seed);
  const dir = makeRunFolder(runId, options.outDir);
  const mqttOptions = clientOptions(options.broker, `fleet-${group}`, { topic: topics.coordinator, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'coordinator', state: 'offline', reason: 'connection lost (last will)' }) });
  const { version, commit } = harnessVersion();
  const startedAt = new Date();

  const jobs: Job[] = suite.scenarios.flatMap(({ def, trials }) => Array.from({ length: trials }, (_, i): Job => ({ id: `${runId}/${def.name}/${i + 1}`, scenario: def, trial: i + 1, state: 'waiting', sinceMs: 0, refusedBy: new Set() })));
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const waiting: Job[] = [...jobs];
  const workers = new Map<string, Worker>();
  const summary = new SummaryCollector();
  const csv = new CsvRecorder(dir);
  csv.start({ runId, rigId: 'fleet', rigMode: '', firmware: '' });
  let reoffered = 0;
  let duplicates = 0;
  let simMs = 0;
  const clocks = new Set<string>();
  const wall = new RealClock();
  const wall0 = wall.nowMs();

  const manifest = (status: string, extra: Record<string, unknown> = {}): void =>
    writeAtomic(path.join(dir, 'manifest.json'), JSON.stringify({
      harness: { name: 'dexhil', version, commit },
      run_id: runId,
      kind: 'fleet',
      rig_id: 'fleet',
      status,
      seed: suite.seed,
      suite: { name: suite.name, file: suite.file },
      scenarios: suite.scenarios.map((s) => ({ name: s.def.name, version: s.def.version, trials: s.trials })),
      broker: { url: publicUrl(options.broker.url), group, jobs_topic: topics.jobs, results_topic: topics.results },
      started_at: startedAt.toISOString(),
      ...extra,
    }, null, 2) + '\n');
  manifest('running');

  const client: MqttClient = mqttJs().connect(options.broker.url, mqttOptions);
  let lastError: string | undefined;
  client.on('error', (err) => {
    if ((err as { code?: unknown }).code === 1 && client.options.protocolVersion === 5) {
      // The coordinator only publishes and subscribes plainly; it is the workers' `$share` that needs a broker with shared subscriptions.
      client.options.protocolVersion = 4;
      notice(`fleet: ${publicUrl(options.broker.url)} does not speak MQTT 5; using 3.1.1 (the workers need a broker with shared subscriptions: mosquitto 2, EMQX, HiveMQ)`);
      return;
    }
    if (err.message !== lastError) notice(`fleet: ${publicUrl(options.broker.url)}: ${err.message}; retrying, the results so far are on disk`);
    lastError = err.message;
  });
  client.on('connect', () => {
    if (lastError !== undefined) notice(`fleet: connected to ${publicUrl(options.broker.url)}`);
    lastError = undefined;
    client.subscribe([topics.statuses, topics.results], { qos: 1 });
    client.publish(topics.coordinator, JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'coordinator', state: 'online', fleet_run: runId, suite: suite.name, jobs: jobs.length }), { qos: 1, retain: true });
  });

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const remaining = (): number => jobs.filter((j) => j.state !== 'done' && j.state !== 'skipped').length;
  const checkDone = (): void => {
    if (remaining() === 0) finish();
  };
  options.signal?.addEventListener('abort', () => finish(), { once: true });

  const offer = (job: Job): void => {
    job.state = 'offered';
    job.sinceMs = wall.nowMs();
    const body: JobMessage = { v: MQTT_SCHEMA_VERSION, type: 'job', job: job.id, fleet_run: runId, scenario: job.scenario.name, version: job.scenario.version, trial: job.trial, seed: suite.seed };
    client.publish(topics.jobs, JSON.stringify(body), { qos: 1 });
  };
  const pump = (): void => {
    if (!client.connected) return;
    const free = [...workers.values()].filter((w) => w.online && !w.busy).length;
    let offered = jobs.filter((j) => j.state === 'offered').length;
    while (offered < free && waiting.length > 0) {
      offer(waiting.shift()!);
      offered++;
    }
  };
  /** Puts a job back in line (first), to be offered again. */
  const again = (job: Job, why: string): void => {
    if (job.state === 'done' || job.state === 'skipped') return;
    if (job.state === 'taken') {
      reoffered++;
      notice(`fleet: ${job.scenario.name} trial ${job.trial} ${why}; offering it again`);
    }
    job.state = 'waiting';
    delete job.rig;
    waiting.unshift(job);
  };

  const onResult = (m: WorkerMessage, job: Job): void => {
    const record = m.record as unknown as TrialRecord | undefined;
    if (record === undefined || m.context === undefined) return;
    if (job.state === 'done') {
      duplicates++;
      return;
    }
    if (record.outcome === 'aborted') {
      again(job, `was aborted on ${m.rig} (the worker was stopped)`);
      pump();
      return;
    }
    job.state = 'done';
    job.rig = m.rig;
    clocks.add(m.context.clock);
    simMs += record.durationMs;
    csv.writeTrial({ runId, rigId: m.rig, rigMode: m.context.rig_mode, firmware: m.context.firmware }, record, (m.attempts ?? []) as unknown as AttemptRecord[], (m.corrections ?? []) as unknown as CorrectionRecord[]);
    summary.listener({ type: 'trial-end', record });
    const w = workers.get(m.rig);
    if (w !== undefined) {
      w.trials++;
      w.busy = false;
    }
    const done = jobs.length - remaining();
    out(`${String(done).padStart(String(jobs.length).length)}/${jobs.length}  ${job.scenario.name} #${job.trial} ${record.outcome}${record.failureLabel ? ` (${record.failureLabel})` : ''} on ${m.rig}\n`);
    pump();
    checkDone();
  };

  client.on('message', (topic, payload) => {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return; // not ours to judge: other clients may share the tree
    }
    if (topic === topics.results) {
      const parsed = workerMessageSchema.safeParse(body);
      if (!parsed.success || parsed.data.fleet_run !== runId) return;
      const m = parsed.data;
      const job = byId.get(m.job);
      if (job === undefined) return;
      const w = workers.get(m.rig) ?? { online: true, busy: false, trials: 0 };
      workers.set(m.rig, w);
      if (m.type === 'taken') {
        w.busy = true;
        if (job.state === 'offered' || job.state === 'waiting') {
          const i = waiting.indexOf(job);
          if (i >= 0) waiting.splice(i, 1);
          job.state = 'taken';
          job.rig = m.rig;
          job.sinceMs = wall.nowMs();
        }
        // Taken twice (offered again while a slow worker had it): the first result counts.
      } else if (m.type === 'declined') {
        if (job.state === 'offered') again(job, `was declined by busy ${m.rig}`);
        wall.setTimer(100, pump); // let the busy worker's status arrive before offering again
      } else if (m.type === 'refused') {
        job.refusedBy.add(m.rig);
        const online = [...workers.entries()].filter(([, x]) => x.online).map(([r]) => r);
        if (online.every((r) => job.refusedBy.has(r))) {
          job.state = 'skipped';
          job.skipReason = `refused by every worker: ${m.reason ?? ''}`;
          notice(`fleet: ${job.scenario.name} trial ${job.trial} skipped: no worker can run it (${m.rig}: ${m.reason ?? 'no reason'})`);
          checkDone();
        } else if (job.state === 'offered') again(job, 'was refused');
        wall.setTimer(100, pump);
      } else onResult(m, job);
      return;
    }
    // A rig's status: fleet workers of this group say whether they are busy; the last will says offline.
    const rig = topic.split('/').slice(-2)[0] ?? '';
    const st = body as { state?: unknown; fleet?: { group?: unknown; busy?: unknown } };
    const known = workers.get(rig);
    if (st.fleet?.group === group && st.state !== 'offline') {
      const w = known ?? { online: true, busy: false, trials: 0 };
      if (known === undefined || !known.online) notice(`fleet: worker ${rig} is ${known === undefined ? 'here' : 'back'}`);
      w.online = true;
      w.busy = st.fleet.busy === true;
      workers.set(rig, w);
      pump();
    } else if (known !== undefined && st.state === 'offline' && known.online) {
      known.online = false;
      known.busy = false;
      notice(`fleet: worker ${rig} went offline`);
      for (const j of jobs) if (j.state === 'taken' && j.rig === rig) again(j, `was lost with ${rig}`);
      pump();
    }
  });

  // Offers nobody took (their worker died, or nobody listened) and results that never came are retried.
  const offerTimeoutMs = options.offerTimeoutMs ?? 5000;
  const ticker: TimerHandle = wall.setInterval(250, () => {
    const now = wall.nowMs();
    let changed = false;
    for (const j of jobs) {
      if (j.state === 'offered' && now - j.sinceMs > offerTimeoutMs) {
        again(j, 'was not taken');
        changed = true;
      } else if (j.state === 'taken' && now - j.sinceMs > options.jobTimeoutMs) {
        again(j, `got no result from ${j.rig ?? '?'} within ${Math.round(options.jobTimeoutMs / 1000)} s`);
        changed = true;
      }
    }
    if (changed) pump();
  });

  out(`fleet ${runId}: ${jobs.length} trials of ${suite.scenarios.map((s) => `${s.def.name} x${s.trials}`).join(', ')}; waiting for workers on ${topics.shared}\n`);
  checkDone();
  try {
    await finished;
  } finally {
    ticker.cancel();
    csv.close();
  }
  const complete = remaining() === 0;
  const wallSeconds = (wall.nowMs() - wall0) / 1000;
  wall.close();
  const skipped = jobs.filter((j) => j.state === 'skipped').map((j) => ({ job: j.id, reason: j.skipReason ?? '' }));
  const workerTrials = Object.fromEntries([...workers.entries()].map(([r, w]) => [r, w.trials]));
  const clockKind = clocks.has('real') || clocks.size === 0 ? 'real' : 'virtual';
  manifest(complete ? 'complete' : 'aborted', {
    ended_at: new Date().toISOString(),
    clock: clockKind,
    sim_seconds: Number((simMs / 1000).toFixed(3)),
    wall_seconds: Number(wallSeconds.toFixed(3)),
    fleet: { workers: workerTrials, reoffered, duplicates_ignored: duplicates, skipped, outstanding: jobs.filter((j) => j.state !== 'done' && j.state !== 'skipped').map((j) => j.id) },
    summary: summary.summaries(),
  });
  await new Promise<void>((resolve) => {
    client.publish(topics.coordinator, JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'coordinator', state: 'offline', reason: complete ? 'suite complete' : 'stopped', fleet_run: runId }), { qos: 1, retain: true }, () => client.end(false, {}, () => resolve()));
    if (!client.connected) client.end(true, {}, () => resolve());
  });
  for (const [what, write] of [['junit.xml', writeJunit], ['report.html', writeRunReport]] as const) {
    try {
      write(dir);
    } catch (err) {
      notice(`could not write ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { runId, dir, summary, complete, trials: jobs.filter((j) => j.state === 'done').length, reoffered, duplicates, workers: workerTrials, skipped, simSeconds: simMs / 1000, wallSeconds, clockKind };
}
