/**
 * Host driver for a 6-axis force/torque sensor on a serial line (docs/protocols.md, "F/T").
 * Read-only device: open() -> inactive (streaming); tare() zeroes the bias in the sensor.
 */
import { checkProtocol, LineDevice, type LineDeviceOptions } from '../line-device.ts';
import type { DeviceInfo, LifecycleState, TransportKind, Wrench } from '../types.ts';

export const FT_PROTOCOL_MAJOR = 1;

export interface FtSample extends Wrench {
  tempC: number;
  deviceTimeUs: number;
  rxMs: number;
}

export interface FtDriverOptions extends LineDeviceOptions {
  transport: TransportKind;
  mode: 'sim' | 'real';
  streamHz: number;
}

export class FtDriver extends LineDevice {
  state: LifecycleState = 'unconfigured';
  info: DeviceInfo | undefined;
  latest: FtSample | undefined;
  private readonly listeners = new Set<(s: FtSample) => void>();

  constructor(private readonly options: FtDriverOptions) {
    super(options);
  }

  onSample(listener: (s: FtSample) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async open(signal?: AbortSignal): Promise<DeviceInfo> {
    const v = await this.version(signal);
    checkProtocol(this.name, v.protocol, FT_PROTOCOL_MAJOR);
    await this.request('STREAM', [this.options.streamHz], signal);
    this.info = { name: this.name, kind: 'ft', transport: this.options.transport, mode: this.options.mode, ...v };
    this.state = 'inactive';
    return this.info;
  }

  /** Zeroes the sensor's bias at the current load (do it unloaded). */
  async tare(signal?: AbortSignal): Promise<void> {
    await this.request('TARE', [], signal);
  }

  async close(): Promise<void> {
    this.closeLink();
    this.state = 'finalized';
  }

  protected override handleSample(fields: string[], deviceTimeUs: number): void {
    if (fields.length !== 7) {
      this.stats.malformed++;
      return;
    }
    const n: number[] = [];
    for (let i = 0; i < 7; i++) {
      const v = Number(fields[i]);
      if (!Number.isFinite(v)) {
        this.stats.malformed++;
        return;
      }
      n.push(v);
    }
    const s: FtSample = {
      fx: n[0]! / 1000,
      fy: n[1]! / 1000,
      fz: n[2]! / 1000,
      tx: n[3]! / 1000,
      ty: n[4]! / 1000,
      tz: n[5]! / 1000,
      tempC: n[6]! / 10,
      deviceTimeUs,
      rxMs: this.clock.nowMs(),
    };
    this.latest = s;
    for (const l of this.listeners) l(s);
  }
}
