/**
 * Ingest throughput: how many frames and lines per second the host side can take in, on one
 * core, through the production code paths, compared with what the physical link can carry.
 *
 *   CAN:    slcan bytes from the adapter -> SlcanChannel (split + decode) -> the arm codec's signal
 *           decode (KCD) -> the candump -L trace written to a file (TraceRecorder).
 *   serial: F/T bytes -> FtDriver (readline split + CRC + decode + sequence check + sample).
 *
 * Bytes arrive in 64-byte chunks (a full-speed USB packet), not as one big buffer, so the
 * per-chunk costs are counted as a real adapter would cause them.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArmCodec, DEFAULT_KCD } from '../drivers/arm/codec.ts';
import { FtDriver } from '../drivers/ft/driver.ts';
import { encodeLine } from '../drivers/line-codec.ts';
import { MemoryStream } from '../drivers/transport/memory-stream.ts';
import { encodeFrame, LAWICEL } from '../drivers/transport/slcan-codec.ts';
import { SlcanChannel } from '../drivers/transport/slcan.ts';
import { frameBits } from '../drivers/transport/virtual-can.ts';
import type { CanFrame } from '../drivers/types.ts';
import { RealClock } from '../harness/clock.ts';
import { quantile } from '../harness/stats.ts';
import { TraceRecorder } from '../reports/traces.ts';

/** Link limits the issue states: a saturated 1 Mbit/s bus, force lines at 921,600 baud. */
export const CAN_LINK_FRAMES_S = 9_000;
export const SERIAL_LINK_LINES_S = 1_150;
const CHUNK = 64;

function summary(values: number[]): string {
  const f = (v: number): string => Math.round(v).toLocaleString('en-US');
  return `median ${f(quantile(values, 0.5))}/s (min ${f(Math.min(...values))}, max ${f(Math.max(...values))}, n=${values.length})`;
}

/** Feedback frames of a moving 7-joint arm: every value different, as on a real bus. */
function feedbackFrames(codec: ArmCodec, n: number): CanFrame[] {
  return Array.from({ length: n }, (_, i) => codec.feedback({ joint: 1 + (i % 7), error: 0, positionRad: Math.sin(i * 1e-3) * 3, velocityRadS: Math.cos(i * 1e-3), torqueNm: (i % 200) / 20 - 5, tempMosC: 40, tempRotorC: 42 }));
}

export async function canIngest(frames: number, reps: number): Promise<number[]> {
  const codec = new ArmCodec(DEFAULT_KCD);
  // What the adapter sends; the frames themselves are not kept (their garbage is not ours to time).
  const bytes = Buffer.from(feedbackFrames(codec, frames).map((f) => encodeFrame(f)).join(''), 'latin1');
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-bench-ingest-'));
    const clock = new RealClock();
    try {
      const stream = new MemoryStream('mem:adapter', (w) => (w.startsWith('V') ? 'V1011\r' : '\r'));
      const channel = new SlcanChannel(stream, { bitrate: 1_000_000, dialect: LAWICEL, clock });
      await channel.open();
      const traces = new TraceRecorder(dir, 'on');
      traces.start(clock);
      const trace = traces.can('arm', 'can0')!;
      let decoded = 0;
      channel.addListener('onMessage', (f) => {
        trace(f, f.tsNs!);
        if (codec.decode(f).kind === 'feedback') decoded++;
      });
      const t0 = performance.now();
      stream.push(bytes, CHUNK);
      traces.close();
      const s = (performance.now() - t0) / 1000;
      const lines = traces.files()[0]!.records;
      if (decoded !== frames || lines !== frames || statSync(path.join(dir, 'traces/arm.log')).size === 0) {
        throw new Error(`CAN ingest lost frames: ${decoded} decoded, ${lines} traced of ${frames}`);
      }
      rates.push(frames / s);
    } finally {
      clock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rates;
}

/** Force/torque stream lines as the sensor sends them. */
function ftLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) => encodeLine('=', i & 0xffff, [(i * 1087) >>> 0, Math.round(Math.sin(i / 50) * 20000), -1234 + (i % 97), 9810 + (i % 13), 55, -(i % 300), 17, 312]));
}

export async function serialIngest(lines: number, reps: number): Promise<number[]> {
  const bytes = Buffer.from(ftLines(lines).join(''), 'latin1');
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const clock = new RealClock();
    try {
      const stream = new MemoryStream();
      const ft = new FtDriver({ name: 'wrist_ft', stream, clock, transport: 'serial', mode: 'real', streamHz: 1000, requestTimeoutMs: 1000 });
      let samples = 0;
      ft.onSample(() => samples++);
      const t0 = performance.now();
      stream.push(bytes, CHUNK);
      const s = (performance.now() - t0) / 1000;
      if (samples !== lines || ft.stats.crcErrors !== 0 || ft.stats.seqGaps !== 0) throw new Error(`serial ingest: ${samples} samples of ${lines}, ${ft.stats.crcErrors} CRC errors, ${ft.stats.seqGaps} gaps`);
      rates.push(lines / s);
      await ft.close();
    } finally {
      clock.close();
    }
  }
  return rates;
}

export async function ingest(reps: number): Promise<void> {
  const frames = 200_000;
  const lines = 100_000;
  const codec = new ArmCodec(DEFAULT_KCD);
  const f = codec.feedback({ joint: 1, error: 0, positionRad: 0, velocityRadS: 0, torqueNm: 0, tempMosC: 40, tempRotorC: 40 });
  const line = ftLines(1)[0]!;
  console.log(`4. ingest on one core, ${CHUNK}-byte chunks, ${reps} repetitions`);
  const can = await canIngest(frames, reps);
  const ser = await serialIngest(lines, reps);
  const canX = quantile(can, 0.5) / CAN_LINK_FRAMES_S;
  const serX = quantile(ser, 0.5) / SERIAL_LINK_LINES_S;
  console.log(`   CAN (slcan decode + signal decode + candump write), ${frames.toLocaleString('en-US')} feedback frames`);
  console.log(`     ${summary(can)}`);
  console.log(`     = ${canX.toFixed(1)}x a saturated 1 Mbit/s bus (${CAN_LINK_FRAMES_S.toLocaleString('en-US')} frames/s; our ${f.data.length}-byte feedback frames: ${Math.round(1e6 / frameBits(f)).toLocaleString('en-US')} frames/s)  ${canX >= 20 ? 'ok' : 'BELOW the 20x target'}`);
  console.log(`   serial (line split + CRC + decode), ${lines.toLocaleString('en-US')} F/T lines of ${line.length} bytes`);
  console.log(`     ${summary(ser)}`);
  console.log(`     = ${serX.toFixed(1)}x force lines at 921,600 baud (${SERIAL_LINK_LINES_S.toLocaleString('en-US')} lines/s; ours: ${Math.round(92_160 / line.length).toLocaleString('en-US')} lines/s)  ${serX >= 20 ? 'ok' : 'BELOW the 20x target'}`);
}
