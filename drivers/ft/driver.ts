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

  protected override handleSample(values: readonly number[], deviceTimeUs: number): void {
    if (values.length !== 7 || !values.every(Number.isFinite)) {
      this.stats.malformed++;
      return;
    }
    const s: FtSample = {
      fx: values[0]! / 1000,
      fy: values[1]! / 1000,
      fz: values[2]! / 1000,
      tx: values[3]! / 1000,
      ty: values[4]! / 1000,
      tz: values[5]! / 1000,
      tempC: values[6]! / 10,
      deviceTimeUs,
      rxMs: this.clock.nowMs(),
    };
    this.latest = s;
    for (const l of this.listeners) l(s);
  }
}
