/**
 * The CAN transport interface. It is the shape the `socketcan` package's RawChannel offers
 * (`addListener('onMessage', fn, instance)`, `send`, `start`, `stop`), so the package's KCD
 * DatabaseService works over every transport we have: SocketCAN, slcan and the virtual bus.
 */
import type { CanFrame } from '../types.ts';

export interface CanChannel {
  readonly name: string;
  addListener(event: 'onMessage', callback: (frame: CanFrame) => void, instance?: object): void;
  removeListener(event: 'onMessage', callback: (frame: CanFrame) => void): void;
  send(frame: CanFrame): void;
  start(): void;
  stop(): void;
}

/** Checks a frame before it reaches a transport (oversize sends corrupt memory in old socketcan). */
export function assertValidFrame(frame: CanFrame): void {
  const maxId = frame.ext ? 0x1fffffff : 0x7ff;
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > maxId) {
    throw new RangeError(`CAN id 0x${frame.id.toString(16)} out of range for a ${frame.ext ? 'extended' : 'standard'} frame`);
  }
  if (frame.data.length > 8) throw new RangeError(`CAN frame 0x${frame.id.toString(16)} has ${frame.data.length} data bytes; classic CAN carries at most 8`);
}

/**
 * The `onMessage` listeners a CanChannel keeps, with socketcan's optional `instance` binding.
 * Copy-on-write, so a listener may remove itself while frames are being delivered.
 */
export class CanListeners {
  private list: { callback: (frame: CanFrame) => void; bound: (frame: CanFrame) => void }[] = [];

  add(callback: (frame: CanFrame) => void, instance?: object): void {
    const bound = instance === undefined ? callback : callback.bind(instance);
    this.list = [...this.list, { callback, bound }];
  }

  remove(callback: (frame: CanFrame) => void): void {
    this.list = this.list.filter((l) => l.callback !== callback);
  }

  deliver(frame: CanFrame): void {
    for (const l of this.list) l.bound(frame);
  }
}
