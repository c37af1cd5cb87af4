/**
 * A ByteStream over a serial port (a USB serial device, a UART, or a pseudo-terminal) through the
 * `serialport` package.
 *
 * `paced: true` is for emulators on pseudo-terminals: a pty moves bytes as fast as the kernel
 * can, whatever the baud rate, so a paced stream releases each write only when the previous
 * one would have left the wire at `baud` (8N1, 10 bits a byte). Hardware paces itself; the host
 * side never needs it.
 */
import type { SerialPort } from 'serialport';
import type { Clock } from '../../harness/clock.ts';
import { DexhilError } from '../../harness/errors.ts';
import { SerialWire, StreamListeners, type ByteStream } from './byte-stream.ts';

export interface SerialPortOptions {
  path: string;
  baud: number;
  clock: Clock;
  /** Release writes at the baud rate (emulators on ptys). */
  paced?: boolean;
  /** Where the path came from, for error messages (e.g. `devices.hand.port in bench-a.yaml`). */
  origin?: string;
}

class SerialPortStream implements ByteStream {
  private readonly listeners = new StreamListeners();
  private readonly wire: SerialWire;
  /** Paced writes waiting for the wire, in write order. */
  private readonly queue: { startMs: number; bytes: Buffer }[] = [];
  private closed = false;

  constructor(
    private readonly port: SerialPort,
    private readonly options: SerialPortOptions,
  ) {
    this.wire = new SerialWire(options.baud);
    port.on('data', (chunk: Buffer) => this.listeners.emitData(chunk));
    port.on('close', (err: (Error & { disconnected?: boolean }) | null) => this.ended(err?.disconnected ? 'disconnected' : 'closed'));
    port.on('error', (err: Error) => this.ended(`error: ${err.message}`));
  }

  get path(): string {
    return this.options.path;
  }

  write(data: string | Buffer): void {
    if (this.closed) throw new DexhilError('DEVICE_STATE', `write on closed serial port ${this.path}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (!this.options.paced) {
      this.port.write(bytes);
      return;
    }
    const now = this.options.clock.nowMs();
    const startMs = this.wire.transmit(now, bytes.length).startMs;
    // Writes leave in order: one that is due already still waits behind a queued one whose
    // timer has not fired yet (timers fire late, never early).
    if (this.queue.length === 0 && startMs <= now) {
      this.port.write(bytes);
      return;
    }
    this.queue.push({ startMs, bytes });
    if (this.queue.length === 1) this.options.clock.setTimer(startMs - now, this.drain);
  }

  /** Writes every queued chunk that is due, in order, and waits for the next one. */
  private readonly drain = (): void => {
    const now = this.options.clock.nowMs();
    while (this.queue.length > 0 && this.queue[0]!.startMs <= now) {
      const { bytes } = this.queue.shift()!;
      if (!this.closed) this.port.write(bytes);
    }
    if (this.queue.length > 0) this.options.clock.setTimer(this.queue[0]!.startMs - now, this.drain);
  };

  onData(listener: (chunk: Buffer) => void): () => void {
    return this.listeners.onData(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    return this.listeners.onClose(listener);
  }

  private ended(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.emitClose(reason);
  }

  close(): Promise<void> {
    if (!this.port.isOpen) {
      this.ended('closed');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.port.close(() => {
        this.ended('closed');
        resolve();
      });
    });
  }
}

/**
 * Opens a serial port. A missing port, a port held by another program or one we may not open
 * gives a DexhilError naming the path and where it came from.
 */
export async function openSerialPort(options: SerialPortOptions): Promise<ByteStream> {
  const where = options.origin === undefined ? '' : ` (${options.origin})`;
  // Loaded when a port is opened: simulated rigs open none, and loading it costs every start (and
  // every trial-block worker thread) about 0.1 s.
  const { SerialPort } = await import('serialport');
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: options.path, baudRate: options.baud, autoOpen: false });
    port.open((err) => {
      if (!err) {
        resolve(new SerialPortStream(port, options));
        return;
      }
      const text = err.message;
      if (/no such file|ENOENT/i.test(text)) {
        reject(new DexhilError('PORT_NOT_FOUND', `no such serial port ${options.path}${where}`, { hint: 'check the cable and the path (ls /dev/serial/by-id/), or set transport: sim or auto for this device' }));
      } else if (/permission denied|EACCES/i.test(text)) {
        reject(new DexhilError('PORT_OPEN', `no permission to open ${options.path}${where}`, { hint: 'add your user to the dialout group (then log in again)' }));
      } else if (/lock|busy|EBUSY/i.test(text)) {
        reject(new DexhilError('PORT_OPEN', `${options.path}${where} is in use by another program`, { hint: 'close the other program (fuser -v on the path shows it)' }));
      } else {
        reject(new DexhilError('PORT_OPEN', `cannot open serial port ${options.path}${where}: ${text}`, { cause: err }));
      }
    });
  });
}
