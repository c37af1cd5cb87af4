/**
 * CAN through the kernel's SocketCAN (`can0`, `vcan0`...) with the `socketcan` package's RawChannel.
 * Imported lazily by the rig factory, so a rig without SocketCAN never loads the addon's raw
 * socket code. Frames are length-checked before they reach the addon, and received frames get the
 * clock's receive time; error frames are counted, not passed on.
 */
import { createRequire } from 'node:module';
import type { Clock } from '../../harness/clock.ts';
import { DexhilError } from '../../harness/errors.ts';
import type { CanFrame } from '../types.ts';
import { assertValidFrame, CanListeners, type CanChannel } from './can.ts';

const require = createRequire(import.meta.url);

interface RawMessage {
  id: number;
  ext: boolean;
  rtr: boolean;
  data: Buffer;
  err?: boolean;
}
interface RawChannel {
  addListener(event: string, callback: CallableFunction, instance?: object): void;
  start(): void;
  stop(): void;
  send(message: RawMessage): void;
}

export class SocketCanChannel implements CanChannel {
  readonly counters = { rxFrames: 0, txFrames: 0, errorFrames: 0 };
  private readonly listeners = new CanListeners();
  private running = false;

  constructor(
    readonly name: string,
    private readonly raw: RawChannel,
    private readonly clock: Clock,
  ) {
    raw.addListener('onMessage', (m: RawMessage) => {
      if (m.err) {
        this.counters.errorFrames++;
        return;
      }
      this.counters.rxFrames++;
      const frame: CanFrame = { id: m.id, ext: m.ext, rtr: m.rtr, data: m.data, tsNs: this.clock.nowNs() };
      this.listeners.deliver(frame);
    });
  }

  addListener(_event: 'onMessage', callback: (frame: CanFrame) => void, instance?: object): void {
    this.listeners.add(callback, instance);
  }

  removeListener(_event: 'onMessage', callback: (frame: CanFrame) => void): void {
    this.listeners.remove(callback);
  }

  send(frame: CanFrame): void {
    assertValidFrame(frame);
    this.counters.txFrames++;
    this.raw.send({ id: frame.id, ext: frame.ext, rtr: frame.rtr, data: frame.data });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.raw.start();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.raw.stop();
  }
}

/**
 * Opens a SocketCAN raw channel on `iface` with non-blocking sends.
 * @throws DexhilError PORT_NOT_FOUND when the interface does not exist or the kernel has no CAN sockets.
 */
export function openSocketCan(iface: string, clock: Clock): SocketCanChannel {
  const socketcan = require('socketcan') as { createRawChannelWithOptions(name: string, options: { timestamps?: boolean; non_block_send?: boolean }): RawChannel };
  let raw: RawChannel;
  try {
    raw = socketcan.createRawChannelWithOptions(iface, { timestamps: false, non_block_send: true });
  } catch (cause) {
    throw new DexhilError('PORT_NOT_FOUND', `cannot open SocketCAN interface ${iface}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      hint: `check \`ip link show ${iface}\` (bring it up with: ip link set ${iface} up type can bitrate 1000000), or use an slcan adapter (transport: slcan)`,
      cause,
    });
  }
  const channel = new SocketCanChannel(`socketcan:${iface}`, raw, clock);
  channel.start();
  return channel;
}
