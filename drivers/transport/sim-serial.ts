/**
 * An in-process serial link: two ByteStream ends joined by a simulated wire. Bytes written at one
 * end arrive at the other after their transmission time at the configured baud rate (8N1: 10 bits
 * a byte) plus a fixed latency, in order, paced on the injected clock: a saturated link carries
 * no more than a real one would.
 */
import type { Clock } from '../../harness/clock.ts';
import { SerialWire, StreamListeners, type ByteStream } from './byte-stream.ts';

export interface SimSerialOptions {
  baud: number;
  latencyMs?: number;
}

class SimSerialEnd implements ByteStream {
  peer!: SimSerialEnd;
  private readonly listeners = new StreamListeners();
  private readonly wire: SerialWire;
  closed = false;

  constructor(
    readonly path: string,
    private readonly clock: Clock,
    private readonly options: SimSerialOptions,
  ) {
    this.wire = new SerialWire(options.baud);
    // Changes first at close: written twice so V8 does not compile it as a constant (VirtualClock's constructor).
    this.closed = true;
    this.closed = false;
  }

  write(data: string | Buffer): void {
    if (this.closed) throw new Error(`write on closed link ${this.path}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const now = this.clock.nowMs();
    const arriveMs = this.wire.transmit(now, bytes.length).endMs + (this.options.latencyMs ?? 0);
    this.clock.setTimer(arriveMs - now, () => this.peer.deliver(bytes));
  }

  private deliver(bytes: Buffer): void {
    if (this.closed) return;
    this.listeners.emitData(bytes);
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    return this.listeners.onData(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    return this.listeners.onClose(listener);
  }

  /** Closes both ends, as pulling the cable would. */
  async close(): Promise<void> {
    this.hangUp('closed');
  }

  hangUp(reason: string): void {
    for (const end of [this, this.peer]) {
      if (end.closed) continue;
      end.closed = true;
      end.listeners.emitClose(reason);
    }
  }
}

/** Creates a connected pair: `[host end, device end]`. */
export function createSimSerialPair(name: string, clock: Clock, options: SimSerialOptions): [ByteStream, ByteStream] {
  const host = new SimSerialEnd(`sim:${name}`, clock, options);
  const device = new SimSerialEnd(`sim:${name}#device`, clock, options);
  host.peer = device;
  device.peer = host;
  return [host, device];
}
