/**
 * CAN over an slcan (Lawicel ASCII) USB adapter: a CanChannel on a ByteStream (a serial port).
 *
 * Bring-up: close (in case a previous program left the channel open), select the bitrate, set
 * timestamps to what the dialect expects, read the adapter version, open. Each setup command
 * must be answered by CR within `timeoutMs`; BEL or silence is an error naming the port.
 * After that, received frames go to the listeners with the clock's receive time, and BELs,
 * transmit acknowledgements and unreadable messages are counted, never thrown.
 */
import type { Clock } from '../../harness/clock.ts';
import { DexhilError } from '../../harness/errors.ts';
import type { CanFrame } from '../types.ts';
import type { ByteStream } from './byte-stream.ts';
import { assertValidFrame, CanListeners, type CanChannel } from './can.ts';
import { bitrateCommand, decodeMessage, encodeFrame, LAWICEL, SlcanSplitter, type SlcanDialect, type SlcanMessage } from './slcan-codec.ts';

export interface SlcanOptions {
  bitrate: number;
  dialect?: SlcanDialect;
  clock: Clock;
  /** How long a setup command may wait for its reply. */
  timeoutMs?: number;
}

export interface SlcanCounters {
  rxFrames: number;
  txFrames: number;
  txAcks: number;
  /** BEL replies: the adapter refused a command or a frame (closed channel, full queue, bus off). */
  errors: number;
  malformed: number;
}

/** A setup command waiting for its answer: `offer` returns false for a message that cannot be it. */
type Waiter = { offer: (m: SlcanMessage) => boolean };

export class SlcanChannel implements CanChannel {
  readonly counters: SlcanCounters = { rxFrames: 0, txFrames: 0, txAcks: 0, errors: 0, malformed: 0 };
  /** Adapter hardware/software version from `V`, when it answered. */
  version: { hardware: string; software: string } | undefined;
  private readonly listeners = new CanListeners();
  private readonly splitter = new SlcanSplitter();
  private readonly dialect: SlcanDialect;
  private waiter: Waiter | undefined;
  /** Replies still owed to commands that timed out: they must not answer the next command. */
  private lateReplies = 0;
  private isOpen = false;
  /** While clearing the line at open: whatever arrives is dropped. */
  private discarding = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: SlcanOptions,
  ) {
    this.dialect = options.dialect ?? LAWICEL;
    this.unsubscribe = stream.onData((chunk) => {
      for (const text of this.splitter.push(chunk)) this.onMessage(decodeMessage(text, this.dialect));
    });
  }

  get name(): string {
    return `slcan:${this.stream.path}`;
  }

  private onMessage(m: SlcanMessage): void {
    if (m.kind === 'frame') {
      if (!this.isOpen) return;
      this.counters.rxFrames++;
      const frame: CanFrame = m.frame; // made for this message alone: stamp it in place
      frame.tsNs = this.options.clock.nowNs();
      this.listeners.deliver(frame);
      return;
    }
    if (m.kind === 'malformed') {
      this.counters.malformed++;
      return;
    }
    if (this.discarding) return;
    if (this.lateReplies > 0) {
      this.lateReplies--;
      return;
    }
    const w = this.waiter;
    if (w !== undefined && w.offer(m)) {
      this.waiter = undefined;
      return;
    }
    if (w !== undefined) return; // a stray reply (e.g. to a command that timed out): not this one's answer
    if (m.kind === 'tx-ack' || m.kind === 'ok') this.counters.txAcks++;
    else if (m.kind === 'error') this.counters.errors++;
  }

  /** Sends a setup command and waits for the adapter's answer (with `passErrors`, a BEL is not it). */
  private command(text: string, what: string, accept: (m: SlcanMessage) => boolean, passErrors = false): Promise<SlcanMessage> {
    const timeoutMs = this.options.timeoutMs ?? 1000;
    return new Promise((resolve, reject) => {
      const timer = this.options.clock.setTimer(timeoutMs, () => {
        this.waiter = undefined;
        this.lateReplies++;
        reject(new DexhilError('DEVICE_TIMEOUT', `slcan adapter on ${this.stream.path} did not answer '${what}' within ${timeoutMs} ms`, { hint: 'check that the port is an slcan (CANable/Lawicel) adapter and that no other program uses it' }));
      });
      this.waiter = {
        offer: (m) => {
          if (accept(m)) {
            timer.cancel();
            resolve(m);
            return true;
          }
          if (m.kind !== 'error' || passErrors) return false; // another command's late answer (a version, an ack, a BEL)
          timer.cancel();
          reject(new DexhilError('DEVICE_REFUSED', `slcan adapter on ${this.stream.path} refused '${what}' (BEL)`));
          return true;
        },
      };
      this.stream.write(text);
    });
  }

  /** Configures and opens the CAN channel. */
  async open(): Promise<void> {
    // Clear the line first: end any half-typed command in the adapter, and drop what is still in
    // the port from an earlier session (the answer to the previous program's close, say).
    this.discarding = true;
    this.stream.write('\r\r\r');
    await this.options.clock.sleep(50);
    this.discarding = false;
    // Then get in step: ask for the version and let every other answer pass until it comes. The
    // adapter answers in order, so what came before it (the clears' answers, however late a
    // loaded adapter or pty sends them) is behind us; each command below gets its own answer.
    const v = await this.command('V\r', 'version', (m) => m.kind === 'version', true).catch(() => undefined);
    if (v?.kind === 'version') this.version = { hardware: v.hardware, software: v.software };
    // A channel left open by another program refuses `S`; close it first and ignore the answer.
    await this.command('C\r', 'close', () => true).catch(() => undefined);
    await this.command(bitrateCommand(this.options.bitrate, this.dialect), `bitrate ${this.options.bitrate}`, (m) => m.kind === 'ok');
    await this.command(this.dialect.timestamps ? 'Z1\r' : 'Z0\r', 'timestamps', (m) => m.kind === 'ok');
    await this.command('O\r', 'open', (m) => m.kind === 'ok');
    this.isOpen = true;
  }

  addListener(_event: 'onMessage', callback: (frame: CanFrame) => void, instance?: object): void {
    this.listeners.add(callback, instance);
  }

  removeListener(_event: 'onMessage', callback: (frame: CanFrame) => void): void {
    this.listeners.remove(callback);
  }

  /** Sends a frame (length-checked). @throws DexhilError DEVICE_STATE when the channel is not open. */
  send(frame: CanFrame): void {
    assertValidFrame(frame);
    if (!this.isOpen) throw new DexhilError('DEVICE_STATE', `slcan channel on ${this.stream.path} is not open`);
    this.counters.txFrames++;
    this.stream.write(encodeFrame(frame));
  }

  /** The channel is opened by `open()`; `start` exists for the CanChannel contract. */
  start(): void {}

  /** Closes the CAN channel (the adapter stops sending frames); the stream stays open. */
  stop(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    try {
      this.stream.write('C\r');
    } catch {
      // the port is already gone (unplugged): nothing left to close
    }
  }

  /** Closes the CAN channel and the serial port. Safe to call twice. */
  async close(): Promise<void> {
    this.stop();
    this.unsubscribe();
    await this.stream.close();
  }
}
