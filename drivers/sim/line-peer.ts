/**
 * Device side of the serial line protocol, for simulated peers: parses host requests, sends
 * replies, stream samples and events with the device's own sequence numbers and microsecond
 * timestamps, and applies the fault knobs (drop, corrupt, latency, stall).
 */
import type { Clock, TimerHandle } from '../../harness/clock.ts';
import { decodeLine, encodeLineBytes } from '../line-codec.ts';
import { LineChannel, type ByteStream } from '../transport/byte-stream.ts';
import type { FaultKnobs } from './faults.ts';
import type { Rng } from './rng.ts';

export interface PeerIdentity {
  model: string;
  firmware: string;
  protocol: string;
  serial: string;
}

export type RequestHandler = (verb: string, args: string[]) => { ok: true; fields?: (string | number)[] } | { ok: false; code: number; reason: string };

export abstract class LinePeer {
  private readonly channel: LineChannel;
  private txSeq = 0;
  private streamTimer: TimerHandle | undefined;
  private stopped = false;
  /** Lines the peer sent (before faults), and lines it dropped or corrupted on purpose. */
  readonly counts = { sent: 0, dropped: 0, corrupted: 0, badRequests: 0 };

  constructor(
    protected readonly stream: ByteStream,
    protected readonly clock: Clock,
    protected readonly identity: PeerIdentity,
    readonly faults: FaultKnobs,
    protected readonly rng: Rng,
    private readonly maxStreamHz: number,
  ) {
    this.channel = new LineChannel(stream, (text) => this.onLine(text));
    // Changes first at close: written twice so V8 does not compile it as a constant (VirtualClock's constructor).
    this.stopped = true;
    this.stopped = false;
  }

  /** Handles a verb other than VER and STREAM. */
  protected abstract handle(verb: string, args: string[]): ReturnType<RequestHandler>;
  /** Fields of one stream sample. */
  protected abstract sample(): (string | number)[];

  private deviceTimeUs(): number {
    return Math.floor(this.clock.nowMs() * 1000) % 0x100000000;
  }

  protected send(sigil: '#' | '=' | '!', fields: (string | number)[]): void {
    if (this.faults.stalled || this.stopped) return; // a late reply after unplug or reboot goes nowhere
    const seq = this.txSeq;
    this.txSeq = (this.txSeq + 1) & 0xffff;
    this.counts.sent++;
    if (this.faults.drop > 0 && this.rng.chance(this.faults.drop)) {
      this.counts.dropped++;
      return;
    }
    const line = encodeLineBytes(sigil, seq, fields, this.deviceTimeUs());
    if (this.faults.corrupt > 0 && this.rng.chance(this.faults.corrupt)) {
      this.counts.corrupted++;
      const i = 1 + Math.floor(this.rng.float() * (line.length - 7));
      line[i]! ^= 0x04;
    }
    this.stream.write(line);
  }

  private onLine(text: string): void {
    const d = decodeLine(text);
    if (!d.ok || d.line.sigil !== '$') {
      this.counts.badRequests++;
      return; // a device ignores lines it cannot trust; the host times out and retries
    }
    const [verb = '', ...args] = d.line.fields;
    const reply = this.dispatch(verb, args);
    const fields = reply.ok ? ['OK', ...(reply.fields ?? [])] : ['NAK', reply.code, reply.reason];
    const respond = (): void => this.send('#', [d.line.seq, ...fields]);
    if (this.faults.latencyMs > 0) this.clock.setTimer(this.faults.latencyMs, respond);
    else respond();
  }

  private dispatch(verb: string, args: string[]): ReturnType<RequestHandler> {
    if (verb === 'VER') return { ok: true, fields: [this.identity.model, this.identity.firmware, this.identity.protocol, this.identity.serial] };
    if (verb === 'STREAM') {
      const hz = Number(args[0]);
      if (!Number.isFinite(hz) || hz < 0 || hz > this.maxStreamHz) return { ok: false, code: 2, reason: `rate out of range 0..${this.maxStreamHz}` };
      this.streamTimer?.cancel();
      this.streamTimer = hz > 0 ? this.clock.setInterval(1000 / hz, () => this.send('=', this.sample())) : undefined;
      return { ok: true };
    }
    return this.handle(verb, args);
  }

  /**
   * Says the device has just started (`!seq,t_us,BOOT,<firmware>`), as firmware does after a
   * power-up or a reboot: its sequence numbers start again at 0 and it streams nothing until asked.
   */
  announceBoot(): void {
    this.send('!', ['BOOT', this.identity.firmware]);
  }

  /** Stops streaming and detaches from the link. */
  stop(): void {
    this.stopped = true;
    this.streamTimer?.cancel();
    this.streamTimer = undefined;
    this.channel.close();
  }
}
