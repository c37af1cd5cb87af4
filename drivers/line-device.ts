/**
 * Host side of the serial line protocol (drivers/line-codec.ts), shared by the hand and the
 * force/torque sensors: requests with timeouts, replies matched by sequence number, stream and
 * event lines dispatched to the device driver, link health counted (CRC errors, sequence gaps,
 * malformed lines). A bad line is counted and dropped; it never throws into the caller.
 */
import { monotonicMs, type Clock, type TimerHandle } from '../harness/clock.ts';
import { DexhilError } from '../harness/errors.ts';
import { decodeLine, encodeLine, intField, seqGap, type Line } from './line-codec.ts';
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
    options.stream.onClose((reason) => {
      const why = `${this.name}: serial link ${options.stream.path} closed (${reason})`;
      this.failAll(new DexhilError('DEVICE_TIMEOUT', why));
      if (this.closed || this.linkLost !== undefined) return;
      this.linkLost = why;
      for (const l of this.linkLostListeners) l(why);
    });
  }

  /** Stream sample from the device: fields after the timestamp. */
  protected abstract handleSample(fields: string[], deviceTimeUs: number): void;

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
      const text = encodeLine('$', seq, [verb, ...args]);
      this.trace?.('tx', text.slice(0, -1), this.clock.nowNs());
      this.channel.send(text);
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
    const decoded = decodeLine(text);
    if (!decoded.ok) {
      if (decoded.error === 'crc') this.stats.crcErrors++;
      else this.stats.malformed++;
      return;
    }
    const line = decoded.line;
    const t = intField(line.fields[0]);
    // A device never sends requests, and its every line carries its timestamp.
    if (line.sigil === '$' || t === undefined) {
      this.stats.malformed++;
      return;
    }
    this.stats.rx++;
    // A device that (re)started counts its lines from 0 again: that is not a loss.
    const boot = line.sigil === '!' && line.fields[1] === 'BOOT';
    if (this.lastRxSeq !== undefined && !boot) this.stats.seqGaps += seqGap(this.lastRxSeq, line.seq);
    this.lastRxSeq = line.seq;
    this.lastRxMs = this.clock.nowMs();
    this.dispatch(line, t);
  }

  private dispatch(line: Line, t: number): void {
    const rest = line.fields.slice(1);
    if (line.sigil === '=') this.handleSample(rest, t);
    else if (line.sigil === '!' && rest[0] === 'BOOT') {
      this.stats.reboots++;
      for (const l of this.bootListeners) l(rest[1] ?? '');
    } else if (line.sigil === '!') this.onEvent(rest, t);
    else this.onReply(rest);
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
