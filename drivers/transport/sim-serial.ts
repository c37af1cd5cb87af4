/**
 * An in-process serial link: two ByteStream ends joined by a simulated wire. Bytes written at one
 * end arrive at the other after their transmission time at the configured baud rate (8N1: 10 bits
 * a byte) plus a fixed latency, in order, paced on the injected clock: a saturated link carries
 * no more than a real one would.
 */
import type { Clock } from '../../harness/clock.ts';
import type { ByteStream } from './byte-stream.ts';

export interface SimSerialOptions {
  baud: number;
  latencyMs?: number;
}

class SimSerialEnd implements ByteStream {
  peer!: SimSerialEnd;
  private readonly dataListeners = new Set<(chunk: Buffer) => void>();
  private readonly closeListeners = new Set<(reason: string) => void>();
  private wireFreeAtMs = 0;
  closed = false;

  constructor(
    readonly path: string,
    private readonly clock: Clock,
    private readonly options: SimSerialOptions,
  ) {}

  write(data: string | Buffer): void {
    if (this.closed) throw new Error(`write on closed link ${this.path}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const now = this.clock.nowMs();
    const start = Math.max(now, this.wireFreeAtMs);
    this.wireFreeAtMs = start + (bytes.length * 10 * 1000) / this.options.baud;
    const arriveMs = this.wireFreeAtMs + (this.options.latencyMs ?? 0);
    this.clock.setTimer(arriveMs - now, () => this.peer.deliver(bytes));
  }

  private deliver(bytes: Buffer): void {
    if (this.closed) return;
    for (const l of this.dataListeners) l(bytes);
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Closes both ends, as pulling the cable would. */
  async close(): Promise<void> {
    this.hangUp('closed');
  }

  hangUp(reason: string): void {
    for (const end of [this, this.peer]) {
      if (end.closed) continue;
      end.closed = true;
      for (const l of end.closeListeners) l(reason);
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
