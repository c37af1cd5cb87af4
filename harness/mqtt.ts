/**
 * The rig on MQTT: live status, results and telemetry out, operator commands in.
 *
 * Topics, under `<prefix>/<rig-id>/` (prefix `dexhil` by default); payloads are JSON objects with
 * `v` (schema version, 1) and `type`:
 *
 *   status        retained, QoS 1   online | running | paused | offline; the last will says offline
 *   run           retained, QoS 1   run start (plan, devices) and run end (summary, MQTT counters)
 *   trial         QoS 1             each trial's result, as its trials.csv row says
 *   correction    QoS 1             each correction event
 *   fault         QoS 1             each fault (safety stops, lost devices, refusals)
 *   telemetry     QoS 0             latest F/T and grip values, down-sampled to --mqtt-telemetry-hz
 *   cmd           (subscribed)      operator commands: pause, resume, abort, reset-done, verdict
 *   cmd/reply     QoS 1             the answer to each command, also to malformed ones
 *   prompt        retained, QoS 1   the question waiting for an operator (a reset, a verdict);
 *                                   cleared (empty retained message) once answered
 *
 * Publishing never waits on the broker: messages go out while the client is connected and fewer
 * than MAX_INFLIGHT are unacknowledged; otherwise run events wait in a bounded queue (the oldest
 * dropped beyond `queueLimit`) and telemetry is dropped. Every drop is counted and reported at the
 * end. A lost connection is retried with backoff (0.5 s doubling to 30 s); the run goes on.
 */
import type { MqttClient } from 'mqtt';
import { z } from 'zod';
import { RealClock, type Clock, type TimerHandle } from './clock.ts';
import { BACKOFF_START_MS, clientOptions, mqttJs, publicUrl, type MqttSettings } from './mqtt-connection.ts';
import type { HarnessEvent } from './events.ts';
import { tapSignals } from '../reports/signals.ts';
import type { Rig } from './rig.ts';
import type { Runner } from './runner.ts';
import { operatorLabel, type Answer, type OperatorDesk, type OperatorPlace, type Question } from './operator.ts';

export const MQTT_SCHEMA_VERSION = 1;
const MAX_INFLIGHT = 64;
const BACKOFF_MAX_MS = 30_000;

export interface MqttCounters {
  published: number;
  dropped: number;
  reconnects: number;
  commands: number;
  rejected: number;
}

const Command = z.object({
  v: z.literal(MQTT_SCHEMA_VERSION),
  id: z.string().max(128).optional(),
  cmd: z.enum(['pause', 'resume', 'abort', 'reset-done', 'verdict']),
  by: z.string().max(128).optional(),
  /** reset-done: the operator could not reset the scene; the trial is an error, not a failure. */
  skip: z.boolean().optional(),
  /** verdict: was the task done? */
  pass: z.boolean().optional(),
  /** verdict: what is wrong, when it was not (becomes the failure label `operator:<label>`). */
  label: z.string().max(80).optional(),
  /** reset-done, verdict: the question they answer, checked when given. */
  scenario: z.string().max(64).optional(),
  trial: z.number().int().positive().optional(),
});

interface Outgoing {
  topic: string;
  payload: string;
  qos: 0 | 1;
  retain: boolean;
}

export class MqttLink implements OperatorPlace {
  readonly name = 'mqtt';
  private desk: OperatorDesk | undefined;
  readonly counters: MqttCounters = { published: 0, dropped: 0, reconnects: 0, commands: 0, rejected: 0 };
  readonly base: string;
  private readonly client: MqttClient;
  private readonly queue: Outgoing[] = [];
  private inflight = 0;
  private backoffMs = BACKOFF_START_MS;
  private connectedOnce = false;
  private lastError: string | undefined;
  private runner: Runner | undefined;
  private telemetryTimer: TimerHandle | undefined;
  private readonly latest: Record<string, number> = {};
  private readonly untap: (() => void)[] = [];
  private state: { state: string; run_id?: string; scenario?: string; trial?: number; reason?: string; fleet?: { group: string; busy: boolean } } = { state: 'online' };
  /** Extra subscriptions (a fleet worker's job topic): the filter given to the broker, the topic its messages come on, the handler. */
  private readonly subscriptions: { filter: string; topic: string; handler: (payload: Buffer) => void }[] = [];
  private runId: string | undefined;
  /** Whether commands are taken: only on a connection the broker authenticated. */
  private readonly commandsOn: boolean;
  private closed = false;

  constructor(
    private readonly settings: MqttSettings,
    readonly rigId: string,
    private readonly notice: (text: string) => void = () => undefined,
  ) {
    this.base = `${settings.prefix ?? 'dexhil'}/${rigId}`;
    const will = { topic: `${this.base}/status`, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'status', rig: rigId, state: 'offline', reason: 'connection lost (last will)' }) };
    const options = clientOptions(settings, rigId, will);
    this.commandsOn = settings.user !== undefined || settings.cert !== undefined;
    this.client = mqttJs().connect(settings.url, options);
    this.client.on('connect', () => {
      if (this.connectedOnce) this.notice(`MQTT: reconnected to ${settings.url}`);
      this.connectedOnce = true;
      this.lastError = undefined;
      this.backoffMs = BACKOFF_START_MS;
      this.client.options.reconnectPeriod = BACKOFF_START_MS;
      this.inflight = 0;
      if (this.commandsOn) this.client.subscribe(`${this.base}/cmd`, { qos: 1 });
      for (const sub of this.subscriptions) this.client.subscribe(sub.filter, { qos: 1 });
      // The retained status says where the rig is now, whatever was said while offline.
      this.send({ topic: `${this.base}/status`, payload: this.statusPayload(), qos: 1, retain: true }, true);
      this.drain();
    });
    this.client.on('reconnect', () => {
      this.counters.reconnects++;
    });
    this.client.on('close', () => {
      this.inflight = 0;
      // Backoff: each failed attempt doubles the wait before the next, up to BACKOFF_MAX_MS.
      this.client.options.reconnectPeriod = this.backoffMs;
      this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    });
    this.client.on('error', (err) => {
      // A broker that only speaks MQTT 3.1.1 (e.g. aedes) refuses 5 with return code 1: step down.
      if ((err as { code?: unknown }).code === 1 && this.client.options.protocolVersion === 5) {
        this.client.options.protocolVersion = 4;
        this.notice(`MQTT: ${publicUrl(settings.url)} does not speak MQTT 5; using 3.1.1`);
        return;
      }
      // Said once per kind of error, not at every retry; the run goes on either way.
      const text = err.message;
      if (text !== this.lastError) this.notice(`MQTT: ${settings.url}: ${text}${/authori|password|bad user/i.test(text) ? ' (check --mqtt-user and --mqtt-password-file)' : ''}; the run goes on, messages are queued or dropped`);
      this.lastError = text;
    });
    this.client.on('message', (topic, payload) => {
      if (topic === `${this.base}/cmd`) this.onCommand(payload);
      for (const sub of this.subscriptions) if (sub.topic === topic) sub.handler(payload);
    });
    if (!this.commandsOn) this.notice('MQTT: operator commands are off: the connection has no user or client certificate, so the broker cannot tell who sends them');
  }

  private statusPayload(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'status', rig: this.rigId, ...this.state, at: new Date().toISOString(), ...extra });
  }

  private publishNow(m: Outgoing): void {
    this.inflight++;
    this.counters.published++;
    this.client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }, () => {
      this.inflight = Math.max(0, this.inflight - 1);
      this.drain();
    });
  }

  /**
   * Sends now when the link has room, else queues (run events) or drops (telemetry). `latest`:
   * the message replaces any queued one on the same topic (the retained status).
   */
  private send(m: Outgoing, latest = false): void {
    if (this.closed) return;
    if (this.client.connected && this.inflight < MAX_INFLIGHT && this.queue.length === 0) return this.publishNow(m);
    if (m.qos === 0) {
      this.counters.dropped++;
      return;
    }
    if (latest) {
      const i = this.queue.findIndex((q) => q.topic === m.topic);
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.queue.push(m);
    const limit = this.settings.queueLimit ?? 1000;
    while (this.queue.length > limit) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.drain();
  }

  private drain(): void {
    while (this.client.connected && this.inflight < MAX_INFLIGHT && this.queue.length > 0) this.publishNow(this.queue.shift()!);
  }

  private event(kind: string, body: Record<string, unknown>, retain = false): void {
    this.send({ topic: `${this.base}/${kind}`, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: kind, rig: this.rigId, ...(this.runId === undefined ? {} : { run_id: this.runId }), ...body }), qos: 1, retain }, retain);
  }

  /**
   * Takes the messages of `filter` (a plain topic, or `$share/<group>/<topic>`: then each message
   * goes to one subscriber of the group), now and after every reconnection.
   */
  subscribe(filter: string, handler: (payload: Buffer) => void): void {
    const topic = filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter;
    this.subscriptions.push({ filter, topic, handler });
    if (this.client.connected) this.client.subscribe(filter, { qos: 1 });
  }

  /** Publishes a JSON message (QoS 1, queued while the broker is away) on any topic. */
  publishJson(topic: string, body: Record<string, unknown>): void {
    this.send({ topic, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, rig: this.rigId, ...body }), qos: 1, retain: false });
  }

  /** Updates the retained status (e.g. a fleet worker's busy flag). */
  setStatus(state: Partial<typeof this.state>): void {
    this.state = { ...this.state, ...state };
    this.send({ topic: `${this.base}/status`, payload: this.statusPayload(), qos: 1, retain: true }, true);
  }

  /** The run's events, published as they happen. */
  readonly listener = (e: HarnessEvent): void => {
    switch (e.type) {
      case 'run-start':
        this.runId = e.run.runId;
        this.event('run', { event: 'start', seed: e.run.seed, clock: e.run.clock, rig_mode: e.run.rigMode, scenarios: e.run.scenarios, skipped: e.run.skipped, devices: e.run.devices.map((d) => ({ name: d.name, kind: d.kind, mode: d.mode, model: d.model, firmware: d.firmware })), started_at: new Date(e.run.startedWallMs).toISOString() }, true);
        this.setStatus({ state: 'running', run_id: e.run.runId });
        break;
      case 'trial-start':
        this.setStatus({ state: this.runner?.paused ? 'paused' : 'running', scenario: e.scenario, trial: e.trial });
        break;
      case 'trial-end': {
        const r = e.record;
        this.event('trial', { scenario: r.scenario, scenario_version: r.scenarioVersion, trial: r.trial, ic_id: r.icId, outcome: r.outcome, success: r.success, stages_reached: r.stagesReached, stages_total: r.stagesTotal, failure_label: r.failureLabel, fault_domain: r.faultDomain, corrections: r.corrections, duration_ms: Number(r.durationMs.toFixed(1)), peak_force_n: Number(r.peakForceN.toFixed(2)) });
        break;
      }
      case 'correction': {
        const c = e.record;
        this.event('correction', { scenario: c.scenario, trial: c.trial, stage: c.stage, attempt: c.attempt, t_ms: Number(c.tMs.toFixed(1)), kind: c.kind, trigger_check: c.triggerCheck, trigger_value: c.triggerValue ?? null, trigger_unit: c.triggerUnit, actor: c.actor, recovered: c.recovered, duration_ms: Number(c.durationMs.toFixed(1)) });
        break;
      }
      case 'fault':
        this.event('fault', { scenario: e.scenario, trial: e.trial, device: e.device, code: e.code, message: e.message, t_ms: Number(e.tMs.toFixed(1)), domain: e.domain ?? null });
        break;
      case 'control':
        this.setStatus({ state: e.action === 'pause' ? 'paused' : 'running' });
        break;
      case 'run-end':
        this.stopTelemetry();
        break;
      default:
        break;
    }
  };

  /** Publishes the run's end with its summary (counters as of now). */
  runEnded(summary: unknown, status: string): void {
    this.event('run', { event: 'end', status, summary, mqtt: this.counters }, true);
  }

  /** Samples the rig's F/T sensors and hand for telemetry at `telemetryHz` of the rig's clock. */
  attachRig(rig: Rig): void {
    this.untap.push(tapSignals(rig, (channel, _tMs, value) => (this.latest[channel] = value)));
    const hz = this.settings.telemetryHz ?? 1;
    if (hz > 0) this.startTelemetry(rig.clock, hz);
  }

  private startTelemetry(clock: Clock, hz: number): void {
    this.telemetryTimer = clock.setInterval(1000 / hz, () => {
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(this.latest)) values[k] = Number(v.toFixed(4));
      this.send({ topic: `${this.base}/telemetry`, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'telemetry', rig: this.rigId, t_ms: Number(clock.nowMs().toFixed(1)), values }), qos: 0, retain: false });
    });
  }

  private stopTelemetry(): void {
    this.telemetryTimer?.cancel();
    this.telemetryTimer = undefined;
    for (const u of this.untap.splice(0)) u();
  }

  /** Operator commands go to this runner. */
  attachRunner(runner: Runner): void {
    this.runner = runner;
  }

  /** Takes operator questions (resets, verdicts) on `prompt` and their answers on `cmd`, when commands are on. */
  attachDesk(desk: OperatorDesk): void {
    if (!this.commandsOn) return;
    this.desk = desk;
    desk.add(this);
  }

  show(q: Question): void {
    const v = MQTT_SCHEMA_VERSION;
    const answer = q.kind === 'reset' ? { v, cmd: 'reset-done', scenario: q.scenario, trial: q.trial } : { v, cmd: 'verdict', scenario: q.scenario, trial: q.trial, pass: true };
    this.send({ topic: `${this.base}/prompt`, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'prompt', rig: this.rigId, ...(this.runId === undefined ? {} : { run_id: this.runId }), kind: q.kind, scenario: q.scenario, trial: q.trial, ic_id: q.icId, question: q.text, answer_on: `${this.base}/cmd`, example: answer }), qos: 1, retain: true }, true);
  }

  clear(): void {
    // An empty retained message removes the retained prompt.
    this.send({ topic: `${this.base}/prompt`, payload: '', qos: 1, retain: true }, true);
  }

  leave(): void {
    this.desk = undefined;
  }

  private reply(id: string | undefined, cmd: string | undefined, ok: boolean, detail: string): void {
    this.send({ topic: `${this.base}/cmd/reply`, payload: JSON.stringify({ v: MQTT_SCHEMA_VERSION, type: 'reply', rig: this.rigId, id: id ?? null, cmd: cmd ?? null, ok, ...(ok ? { detail } : { error: detail }), state: this.state.state }), qos: 1, retain: false });
  }

  private onCommand(payload: Buffer): void {
    this.counters.commands++;
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString('utf8'));
    } catch {
      this.counters.rejected++;
      return this.reply(undefined, undefined, false, `not JSON (${payload.length} bytes); send e.g. {"v":1,"id":"42","cmd":"pause"}`);
    }
    const parsed = Command.safeParse(raw);
    if (!parsed.success) {
      this.counters.rejected++;
      const id = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : undefined;
      const issue = parsed.error.issues[0];
      return this.reply(id, undefined, false, `bad command: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || 'payload'}: ${issue.message}`}; commands are {"v":1,"id":"<any>","cmd":"pause|resume|abort|reset-done|verdict"}`);
    }
    const { id, cmd, by } = parsed.data;
    const who = `mqtt${by === undefined ? '' : `:${by}`}`;
    if (cmd === 'reset-done' || cmd === 'verdict') {
      if (cmd === 'verdict' && parsed.data.pass === undefined) {
        this.counters.rejected++;
        return this.reply(id, cmd, false, 'bad command: a verdict needs "pass": true or false (and a "label" saying what is wrong when false)');
      }
      const answer: Answer = cmd === 'reset-done' ? { kind: 'reset', done: parsed.data.skip !== true, by: who } : { kind: 'verdict', pass: parsed.data.pass === true, label: parsed.data.pass === true ? '' : operatorLabel(parsed.data.label ?? ''), by: who };
      const refused = this.desk === undefined ? 'no operator question is asked on this run' : this.desk.answer(answer, { scenario: parsed.data.scenario, trial: parsed.data.trial });
      if (refused !== undefined) this.counters.rejected++;
      return this.reply(id, cmd, refused === undefined, refused ?? (answer.kind === 'reset' ? (answer.done ? 'reset confirmed' : 'reset skipped: the trial is recorded as an error') : answer.pass ? 'verdict: pass' : `verdict: fail (${answer.label})`));
    }
    const runner = this.runner;
    if (runner === undefined) {
      this.counters.rejected++;
      return this.reply(id, cmd, false, 'no run is in progress');
    }
    if (cmd === 'pause') {
      const ok = runner.pause(who);
      if (ok) this.notice(`paused by ${who}: the trial in progress finishes, the next waits for resume`);
      return this.reply(id, cmd, ok, ok ? 'pausing after the trial in progress' : 'already paused');
    }
    if (cmd === 'resume') {
      const ok = runner.resume(who);
      if (ok) this.notice(`resumed by ${who}`);
      return this.reply(id, cmd, ok, ok ? 'resumed' : 'not paused');
    }
    this.notice(`abort by ${who}: holding the rig, trials done so far are kept`);
    runner.abort(`operator abort (${who})`);
    this.setStatus({ state: 'stopping' });
    this.reply(id, cmd, true, 'stopping: the trial in progress is held and ends aborted');
  }

  /**
   * Waits up to `timeoutMs` for queued and unacknowledged messages to reach the broker, counts
   * what did not as dropped, marks the rig offline (retained) and disconnects.
   */
  async close(timeoutMs = 3000): Promise<MqttCounters> {
    this.stopTelemetry();
    if (this.closed) return this.counters;
    this.setStatus({ state: 'offline', reason: 'the harness finished' });
    const wall = new RealClock(); // the broker answers in wall time, whatever the run's clock
    while ((this.queue.length > 0 || this.inflight > 0) && wall.nowMs() < timeoutMs) await wall.sleep(20);
    wall.close();
    this.counters.dropped += this.queue.length + this.inflight;
    this.queue.length = 0;
    this.closed = true;
    await new Promise<void>((resolve) => this.client.end(!this.client.connected, {}, () => resolve()));
    return this.counters;
  }
}
