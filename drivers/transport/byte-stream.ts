/**
 * The byte-stream transport interface (serial ports, pseudo-terminals, in-process links), and the
 * line channel every serial driver reads through: bytes -> @serialport/parser-readline -> lines.
 */
import { ReadlineParser } from '@serialport/parser-readline';

export interface ByteStream {
  /** Where the bytes go: a device path, or `sim:<name>` for an in-process link. */
  readonly path: string;
  write(data: string | Buffer): void;
  /** Subscribes to received bytes; returns the unsubscribe function. */
  onData(listener: (chunk: Buffer) => void): () => void;
  /** Subscribes to the link closing (unplugged, closed by us). */
  onClose(listener: (reason: string) => void): () => void;
  close(): Promise<void>;
}

const done = (): void => undefined;
const NEWLINE = Buffer.from('\n');

/**
 * The serialport readline parser, used for its parsing alone: the parsing (holding a partial line,
 * finding each newline) is the library's `_transform`, but bytes go straight in (`feed`) and
 * lines straight out to `onLine`, not through the stream's two sides. Its readable side decoded
 * each line, emitted it as an event and queued a process.nextTick for it (4-5% of a simulated
 * run's time in a CPU profile); its writable side checked its state, wrapped a callback and queued
 * a process.nextTick for every chunk written (2%).
 */
class ReadlineSplitter extends ReadlineParser {
  constructor(private readonly onLine: (line: Buffer) => void) {
    super({ delimiter: '\n' });
  }

  /** Parses `chunk` now: every line it completes reaches `onLine` before this returns. */
  feed(chunk: Buffer): void {
    this._transform(chunk, 'binary', done);
  }

  override push(chunk: unknown): boolean {
    if (Buffer.isBuffer(chunk)) this.onLine(chunk);
    return true;
  }
}

/**
 * Splits a byte stream into lines with the serialport readline parser. Lines over `maxLineBytes`
 * without a newline are discarded and counted (garbage on the line must not grow memory).
 */
export class LineChannel {
  private readonly parser: ReadlineSplitter;
  private readonly unsubscribe: () => void;
  /** Bytes the parser holds after the last newline (a line not yet ended). */
  private pendingBytes = 0;
  /** The parser's next line is the runaway one being dropped. */
  private dropping = false;
  overflows = 0;

  constructor(
    private readonly stream: ByteStream,
    onLine: (line: string) => void,
    private readonly maxLineBytes = 1024,
  ) {
    this.parser = new ReadlineSplitter((line) => {
      if (this.dropping) {
        this.dropping = false;
        return;
      }
      onLine(line.toString('latin1'));
    });
    this.unsubscribe = stream.onData((chunk) => {
      // Most chunks of a simulated link are one whole line: no search for those.
      const nl = chunk[chunk.length - 1] === 0x0a ? chunk.length - 1 : chunk.lastIndexOf(0x0a);
      if (nl >= 0) this.pendingBytes = chunk.length - nl - 1;
      else {
        if (this.pendingBytes + chunk.length > this.maxLineBytes) {
          // The line has no end in sight: the parser gives up what it holds, and it is dropped.
          this.overflows++;
          this.dropping = true;
          this.parser.feed(NEWLINE);
          this.pendingBytes = 0;
        }
        this.pendingBytes += chunk.length;
      }
      this.parser.feed(chunk);
    });
  }

  send(line: string | Buffer): void {
    this.stream.write(line);
  }

  close(): void {
    this.unsubscribe();
    this.parser.destroy();
  }
}

/** The data and close listeners a ByteStream keeps. */
export class StreamListeners {
  private readonly data = new Set<(chunk: Buffer) => void>();
  private readonly close = new Set<(reason: string) => void>();

  onData(listener: (chunk: Buffer) => void): () => void {
    this.data.add(listener);
    return () => this.data.delete(listener);
  }

  onClose(listener: (reason: string) => void): () => void {
    this.close.add(listener);
    return () => this.close.delete(listener);
  }

  emitData(chunk: Buffer): void {
    for (const l of this.data) l(chunk);
  }

  emitClose(reason: string): void {
    for (const l of this.close) l(reason);
  }
}

/**
 * Serial wire timing (8N1: 10 bits a byte): writes queue behind each other on the wire, so a write
 * starts when the wire is free and ends its bytes' transmission time later.
 */
export class SerialWire {
  private freeAtMs = 0;
  constructor(private readonly baud: number) {}

  /** Clock times (ms) at which `byteCount` bytes written at `nowMs` start and finish leaving. */
  transmit(nowMs: number, byteCount: number): { startMs: number; endMs: number } {
    const startMs = Math.max(nowMs, this.freeAtMs);
    this.freeAtMs = startMs + (byteCount * 10 * 1000) / this.baud;
    return { startMs, endMs: this.freeAtMs };
  }
}
