/**
 * An in-process virtual CAN bus with wire timing. Frames wait for the bus, the lowest id wins
 * arbitration, and each frame occupies the bus for its bit time (classic CAN, worst-case bit
 * stuffing), so a saturated 1 Mbit/s bus carries about 7,400 8-byte standard frames per second,
 * as a real one does. Delivery goes to every other channel on the bus (no self-reception).
 */
import { objects } from '../arrays.ts';
import type { Clock } from '../../harness/clock.ts';
import type { CanFrame } from '../types.ts';
import { assertValidFrame, CanListeners, type CanChannel } from './can.ts';

/** Bits on the wire for a classic CAN data frame, with worst-case stuff bits and 3-bit IFS. */
export function frameBits(frame: Pick<CanFrame, 'ext' | 'data' | 'rtr'>): number {
  const dataBits = frame.rtr ? 0 : 8 * frame.data.length;
  const stuffable = (frame.ext ? 54 : 34) + dataBits; // SOF..CRC, the bits that get stuffed
  const fixed = 13; // CRC delimiter, ACK slot+delimiter, EOF (7), IFS (3)
  return stuffable + Math.floor((stuffable - 1) / 4) + fixed;
}

export interface VirtualCanBusOptions {
  bitrate: number;
}

interface Pending {
  frame: CanFrame;
  from: VirtualCanChannel;
  order: number;
}

export class VirtualCanBus {
  private readonly channels = new Set<VirtualCanChannel>();
  private readonly pending = objects<Pending>();
  /** The frame on the wire now (none: the bus is idle). */
  private onBus: Pending | undefined;
  private order = 0;
  /** Frames carried so far. */
  framesCarried = 0;

  constructor(
    private readonly clock: Clock,
    readonly options: VirtualCanBusOptions,
  ) {}

  channel(name: string): CanChannel {
    const ch = new VirtualCanChannel(name, this);
    this.channels.add(ch);
    return ch;
  }

  detach(ch: VirtualCanChannel): void {
    this.channels.delete(ch);
  }

  enqueue(frame: CanFrame, from: VirtualCanChannel): void {
    this.pending.push({ frame: { id: frame.id, ext: frame.ext, rtr: frame.rtr, data: Buffer.from(frame.data) }, from, order: this.order++ });
    if (this.onBus === undefined) this.startNext();
  }

  private startNext(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    // Arbitration: the lowest identifier wins; standard beats extended with the same base id.
    let best = 0;
    for (let i = 1; i < pending.length; i++) {
      if (beats(pending[i]!, pending[best]!)) best = i;
    }
    const winner = pending[best]!;
    // Taken out by moving the last one into its place: ties go by `order`, not by place.
    pending[best] = pending[pending.length - 1]!;
    pending.pop();
    this.onBus = winner;
    this.clock.setTimer((frameBits(winner.frame) * 1000) / this.options.bitrate, this.transmitted);
  }

  /** The frame on the wire has gone through: every other channel receives it, the next one starts. */
  private readonly transmitted = (): void => {
    const winner = this.onBus!;
    this.framesCarried++;
    // No receive time on the frame: it arrives now, and a receiver that wants the time (the
    // arm driver's trace) reads the clock, rather than a bigint being made for every frame.
    const { id, ext, rtr, data } = winner.frame;
    for (const ch of this.channels) {
      if (ch !== winner.from) ch.deliver({ id, ext, rtr, data });
    }
    // Only now is the bus free: a frame a receiver sent back meanwhile waits in `pending`.
    this.onBus = undefined;
    this.startNext();
  };
}

/** CAN arbitration: the lower 11-bit base id wins; on a tie a standard frame beats an extended one. */
function beats(a: Pending, b: Pending): boolean {
  const baseA = a.frame.ext ? a.frame.id >>> 18 : a.frame.id;
  const baseB = b.frame.ext ? b.frame.id >>> 18 : b.frame.id;
  if (baseA !== baseB) return baseA < baseB;
  if (a.frame.ext !== b.frame.ext) return !a.frame.ext;
  if (a.frame.id !== b.frame.id) return a.frame.id < b.frame.id;
  return a.order < b.order;
}

class VirtualCanChannel implements CanChannel {
  private readonly listeners = new CanListeners();
  private started = false;

  constructor(
    readonly name: string,
    private readonly bus: VirtualCanBus,
  ) {}

  addListener(_event: 'onMessage', callback: (frame: CanFrame) => void, instance?: object): void {
    this.listeners.add(callback, instance);
  }

  removeListener(_event: 'onMessage', callback: (frame: CanFrame) => void): void {
    this.listeners.remove(callback);
  }

  send(frame: CanFrame): void {
    assertValidFrame(frame);
    if (!this.started) throw new Error(`CAN channel ${this.name} is not started`);
    this.bus.enqueue(frame, this);
  }

  deliver(frame: CanFrame): void {
    if (!this.started) return;
    this.listeners.deliver(frame);
  }

  start(): void {
    this.started = true;
  }

  stop(): void {
    this.started = false;
    this.bus.detach(this);
  }
}
