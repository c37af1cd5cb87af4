/**
 * A ByteStream in memory, for benches and tests that drive a host-side transport or driver
 * without a peer: bytes are pushed in as if they arrived, and what is written may be answered.
 */
import { StreamListeners, type ByteStream } from './byte-stream.ts';

export class MemoryStream implements ByteStream {
  private readonly listeners = new StreamListeners();

  /** `reply` sees each write and may answer it; the answer arrives after the current task. */
  constructor(
    readonly path = 'mem:stream',
    private readonly reply: (written: string) => string | undefined = () => undefined,
  ) {}

  write(data: string | Buffer): void {
    const answer = this.reply(data.toString('latin1'));
    if (answer !== undefined) queueMicrotask(() => this.listeners.emitData(Buffer.from(answer, 'latin1')));
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    return this.listeners.onData(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    return this.listeners.onClose(listener);
  }

  /** Delivers `bytes` as received, in chunks of at most `chunk` bytes (as a USB adapter would). */
  push(bytes: Buffer, chunk = bytes.length): void {
    for (let i = 0; i < bytes.length; i += Math.max(1, chunk)) this.listeners.emitData(bytes.subarray(i, i + Math.max(1, chunk)));
  }

  close(): Promise<void> {
    this.listeners.emitClose('closed');
    return Promise.resolve();
  }
}
