/**
 * Host side of the serial line protocol (drivers/line-codec.ts), shared by the hand and the
 * force/torque sensors: requests with timeouts, replies matched by sequence number, stream and
 * event lines dispatched to the device driver, link health counted (CRC errors, sequence gaps,
 * malformed lines). A bad line is counted and dropped; it never throws into the caller.
 */
import { monotonicMs, type Clock, type TimerHandle } from '../harness/clock.ts';
import { DexhilError } from '../harness/errors.ts';
import { checkLine, encodeLineBytes, intField, lineFields, sampleFields, seqGap } from './line-codec.ts';
import { LineChannel, type ByteStream } from './transport/byte-stream.ts';
import { emptyStats, type LineTrace, type LinkStats } from './types.ts';

export interface LineDeviceOptions {
  name: string;
  stream: ByteStream;
  clock: Clock;
  /** How long a request may wait for its reply. */
  requestTimeoutMs: number;
  /** Raw-traffic tap: every line sent and received (before it is decoded). */
  trace?: LineTrace | undefined;
}

interface PendingRequest {
  verb: string;
  resolve: (fields: string[]) => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

export interface VersionReply {
  model: string;
  firmware: string;
  protocol: string;
  serial: string;
}

export abstract class LineDevice {
  readonly name: string;
  readonly stats: LinkStats = emptyStats();
  protected readonly clock: Clock;
  private readonly channel: LineChannel;
  private readonly pending = new Map<number, PendingRequest>();
  private txSeq = 0;
  private lastRxSeq: number | undefined;
  private readonly requestTimeoutMs: number;
  private readonly trace: LineTrace | undefined;
  private closed = false;
  private readonly bootListeners = new Set<(firmware: string) => void>();
  /** The values of the sample being handled (see handleSample). */
  private readonly sample: number[] = [];
  private readonly linkLostListeners = new Set<(reason: string) => void>();
  /** Why the link is gone (unplugged, closed under us), once it is; not set by our own close. */
  linkLost: string | undefined;
  /** Clock time (ms) of the last valid line from the device; undefined before the first. */
  lastRxMs: number | undefined;
  /** monotonicMs() when the line being handled arrived (for reaction times). */
  lastRxMonoMs = 0;

  constructor(options: LineDeviceOptions) {
    this.name = options.name;
    this.clock = options.clock;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.trace = options.trace;
    this.channel = new LineChannel(options.stream, (text) => this.onLine(text));
    // Changes first at close: written twice so V8 does not compile it as a constant (VirtualClock's constructor).
    this.closed = true;
    this.closed = false;
    options.stream.onClose((reason) => {
      const why = `${this.name}: serial link ${options.stream.path} closed (${reason})`;
      this.failAll(new DexhilError('DEVICE_TIMEOUT', why));
      if (this.closed || this.linkLost !== undefined) return;
      this.linkLost = why;
      for (const l of this.linkLostListeners) l(why);
    });
  }

  /**
   * Stream sample from the device: its fields after the timestamp, as integers (NaN for a field
   * that is not one). The array is reused for the next sample: keep copies, not it.
   */
  protected abstract handleSample(values: readonly number[], deviceTimeUs: number): void;

  /** Listens for the link going away under us (a cable pulled, the port gone). */
  onLinkLost(listener: (reason: string) => void): () => void {
    this.linkLostListeners.add(listener);
    return () => this.linkLostListeners.delete(listener);
  }

  /** Asynchronous event from the device other than BOOT. */
  protected onEvent(_fields: string[], _deviceTimeUs: number): void {}

  /**
   * Listens for the device saying it (re)started: it has lost what we set up (streaming, mode,
   * tare), so whoever owns the device must treat the trial in progress as disturbed.
   */
  onBoot(listener: (firmware: string) => void): () => void {
    this.bootListeners.add(listener);
    return () => this.bootListeners.delete(listener);
  }

  /**
   * Sends `$seq,VERB,args` and resolves with the reply's fields after `OK`.
   * @throws DexhilError DEVICE_REFUSED on NAK, DEVICE_TIMEOUT when no reply comes in time, ABORTED.
   */
  request(verb: string, args: readonly (string | number)[] = [], signal?: AbortSignal): Promise<string[]> {
    if (this.closed) return Promise.reject(new DexhilError('DEVICE_STATE', `${this.name}: link is closed`));
    const seq = this.txSeq;
    this.txSeq = (this.txSeq + 1) & 0xffff;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.pending.get(seq)?.timer.cancel();
        this.pending.delete(seq);
        reject(signal?.reason instanceof Error ? signal.reason : new DexhilError('ABORTED', `${this.name}: ${verb} aborted`));
      };
      const timer = this.clock.setTimer(this.requestTimeoutMs, () => {
        this.pending.delete(seq);
        signal?.removeEventListener('abort', onAbort);
        reject(
          new DexhilError('DEVICE_TIMEOUT', `${this.name}: no reply to ${verb} within ${this.requestTimeoutMs} ms`, {
            hint: 'check the cable and that the device is powered; `dexhil doctor` shows link health',
          }),
        );
      });
      this.pending.set(seq, {
        verb,
        timer,
        resolve: (f) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(f);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.stats.tx++;
      const bytes = encodeLineBytes('$', seq, args, verb);
      this.trace?.('tx', bytes.toString('utf8', 0, bytes.length - 1), this.clock.nowNs());
      this.channel.send(bytes);
    });
  }

  /** Asks the device who it is: model, firmware, protocol version, serial number. */
  async version(signal?: AbortSignal): Promise<VersionReply> {
    const f = await this.request('VER', [], signal);
    const [model, firmware, protocol, serial] = f;
    if (model === undefined || firmware === undefined || protocol === undefined || serial === undefined) {
      throw new DexhilError('PROTOCOL', `${this.name}: version reply has ${f.length} fields, expected 4`);
    }
    return { model, firmware, protocol, serial };
  }

  private onLine(text: string): void {
    this.lastRxMonoMs = monotonicMs();
    this.trace?.('rx', text, this.clock.nowNs());
    const checked = checkLine(text);
    if (!checked.ok) {
      if (checked.error === 'crc') this.stats.crcErrors++;
      else this.stats.malformed++;
      return;
    }
    const frame = checked.frame;
    if (frame.sigil === '=') {
      const t = sampleFields(text, frame, this.sample);
      if (t === undefined) {
        this.stats.malformed++;
        return;
      }
      this.received(frame.seq, false);
      this.handleSample(this.sample, t);
      return;
    }
    const fields = lineFields(text, frame);
    const t = intField(fields[0]);
    // A device never sends requests, and its every line carries its timestamp.
    if (frame.sigil === '$' || t === undefined) {
      this.stats.malformed++;
      return;
    }
    // A device that (re)started counts its lines from 0 again: that is not a loss.
    const boot = frame.sigil === '!' && fields[1] === 'BOOT';
    this.received(frame.seq, boot);
    const rest = fields.slice(1);
    if (boot) {
      this.stats.reboots++;
      for (const l of this.bootListeners) l(rest[1] ?? '');
    } else if (frame.sigil === '!') this.onEvent(rest, t);
    else this.onReply(rest);
  }

  /** Counts a valid line from the device and the lines lost before it. */
  private received(seq: number, boot: boolean): void {
    this.stats.rx++;
    if (this.lastRxSeq !== undefined && !boot) this.stats.seqGaps += seqGap(this.lastRxSeq, seq);
    this.lastRxSeq = seq;
    this.lastRxMs = this.clock.nowMs();
  }

  private onReply(fields: string[]): void {
    const reqSeq = intField(fields[0]);
    const p = reqSeq === undefined ? undefined : this.pending.get(reqSeq);
    if (reqSeq === undefined || p === undefined) return; // a late reply to a timed-out request
    this.pending.delete(reqSeq);
    p.timer.cancel();
    if (fields[1] === 'OK') p.resolve(fields.slice(2));
    else {
      const code = fields[2] ?? '?';
      const reason = fields.slice(3).join(',') || 'no reason given';
      p.reject(new DexhilError('DEVICE_REFUSED', `${this.name}: ${p.verb} refused (code ${code}: ${reason})`));
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Closes the line channel and fails pending requests. Safe to call twice. */
  closeLink(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new DexhilError('DEVICE_STATE', `${this.name}: link closed`));
    this.channel.close();
  }
}

/** Checks that the device's protocol major version is the one this driver speaks. */
export function checkProtocol(name: string, reported: string, expectedMajor: number): void {
  const major = Number(reported.split('.')[0]);
  if (major !== expectedMajor) {
    throw new DexhilError('PROTOCOL_VERSION', `${name}: device speaks protocol ${reported}, this harness speaks ${expectedMajor}.x`, {
      hint: 'update the device firmware or use a dexhil release that speaks its protocol',
    });
  }
}
