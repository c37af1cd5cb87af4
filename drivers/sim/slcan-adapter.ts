/**
 * An emulated slcan USB-CAN adapter: the device side of the Lawicel protocol on a byte stream
 * (one end of a pty pair), bridged to a CAN channel (a virtual bus where simulated motors sit).
 * It behaves as a CANable does: setup commands only while the channel is closed, frames only
 * while it is open, BEL for anything refused, and transmit acknowledgements in its dialect.
 * Bus-off is a fault knob (`busOff`). Not modelled: error frames, the receive FIFO overflowing.
 */
import type { Clock } from '../../harness/clock.ts';
import type { ByteStream } from '../transport/byte-stream.ts';
import type { CanChannel } from '../transport/can.ts';
import { bitrateOf, decodeMessage, encodeFrame, LAWICEL, SlcanSplitter, type SlcanDialect } from '../transport/slcan-codec.ts';
import type { CanFrame } from '../types.ts';

export interface SlcanAdapterOptions {
  dialect?: SlcanDialect;
  /** Bitrate of the bus the adapter sits on: opening at another rate is refused (BEL). */
  busBitrate: number;
  /** `V` reply: two hex digits each. */
  hardware?: string;
  software?: string;
  serial?: string;
}

export class SlcanAdapterEmulator {
  private readonly splitter = new SlcanSplitter();
  private readonly dialect: SlcanDialect;
  private bitrate: number | undefined;
  private open = false;
  private timestamps = false;
  private readonly unsubscribe: () => void;
  private readonly onBusFrame = (frame: CanFrame): void => {
    if (!this.open || this.busOff) return;
    this.framesToHost++;
    this.stream.write(encodeFrame(frame, this.timestamps ? this.clock.nowMs() : undefined));
  };
  /**
   * Bus-off (fault knob): the CAN controller has left the bus after too many errors. It sends and
   * receives nothing, refuses frames with BEL and reports bus-off in its status flags, until the
   * channel is closed and opened again (as a CANable's firmware recovers on re-init).
   */
  busOff = false;
  framesToHost = 0;
  framesFromHost = 0;
  refused = 0;

  constructor(
    private readonly stream: ByteStream,
    private readonly bus: CanChannel,
    private readonly clock: Clock,
    private readonly options: SlcanAdapterOptions,
  ) {
    this.dialect = options.dialect ?? LAWICEL;
    bus.addListener('onMessage', this.onBusFrame);
    bus.start();
    this.unsubscribe = stream.onData((chunk) => {
      for (const text of this.splitter.push(chunk)) this.onCommand(text);
    });
  }

  private reply(text: string): void {
    this.stream.write(text);
  }

  private refuse(): void {
    this.refused++;
    this.reply('\x07');
  }

  private onCommand(text: string): void {
    const c = text[0];
    if (c === 't' || c === 'T' || c === 'r' || c === 'R') {
      // Host frames never carry timestamps, whatever the dialect says about received ones.
      const m = decodeMessage(text, { ...this.dialect, timestamps: false });
      if (!this.open || m.kind !== 'frame' || this.busOff) return this.refuse();
      this.framesFromHost++;
      this.bus.send(m.frame);
      this.reply(this.dialect.transmitAck === 'z' ? (m.frame.ext ? 'Z\r' : 'z\r') : '\r');
      return;
    }
    switch (c) {
      case 'S': {
        const rate = bitrateOf(text, this.dialect);
        if (this.open || rate === undefined) return this.refuse();
        this.bitrate = rate;
        return this.reply('\r');
      }
      case 'O':
        // A real adapter opens at any rate and then sees only error frames on a mismatched bus; the
        // emulator refuses instead, so a wrong bitrate in the rig config shows at bring-up.
        if (this.open || this.bitrate !== this.options.busBitrate || text !== 'O') return this.refuse();
        this.open = true;
        return this.reply('\r');
      case 'C':
        this.open = false;
        this.busOff = false;
        return this.reply('\r');
      case 'Z':
        if (this.open || (text !== 'Z0' && text !== 'Z1')) return this.refuse();
        this.timestamps = text === 'Z1';
        return this.reply('\r');
      case 'V':
        return this.reply(`V${this.options.hardware ?? '10'}${this.options.software ?? '11'}\r`);
      case 'N':
        return this.reply(`N${(this.options.serial ?? 'EMU1').padEnd(4, '0').slice(0, 4)}\r`);
      case 'F':
        return this.reply(this.busOff ? 'F80\r' : 'F00\r'); // bit 7: bus error (bus-off)
      default:
        return this.refuse();
    }
  }

  stop(): void {
    this.open = false;
    this.unsubscribe();
    this.bus.removeListener('onMessage', this.onBusFrame);
    this.bus.stop();
  }
}
