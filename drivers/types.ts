/**
 * Types shared by drivers, the rig and the harness. Drivers depend on nothing above them.
 */
export type DeviceKind = 'arm' | 'hand' | 'ft';
export type TransportKind = 'sim' | 'socketcan' | 'slcan' | 'serial';

/**
 * Device lifecycle (DESIGN.md): unconfigured -> inactive (link up, read-only) -> active (may move)
 * -> finalized, plus faulted. Motion commands are refused unless `active`.
 */
export type LifecycleState = 'unconfigured' | 'inactive' | 'active' | 'finalized' | 'faulted';

export interface DeviceInfo {
  /** Name in the rig config, e.g. `arm`, `wrist_ft`. */
  name: string;
  kind: DeviceKind;
  transport: TransportKind;
  /** `sim` when a simulated peer answered, `real` when hardware did. */
  mode: 'sim' | 'real';
  model: string;
  firmware: string;
  protocol: string;
  serial: string;
}

/** Device name -> sim|real; recorded in the manifest and in every trial row. */
export type RigMode = Record<string, 'sim' | 'real'>;

/** Link health counters a driver keeps from the moment it opens. */
export interface LinkStats {
  rx: number;
  tx: number;
  crcErrors: number;
  seqGaps: number;
  malformed: number;
  /** Times the device said it had (re)started while we were connected (`BOOT` events). */
  reboots: number;
}

export function emptyStats(): LinkStats {
  return { rx: 0, tx: 0, crcErrors: 0, seqGaps: 0, malformed: 0, reboots: 0 };
}

/** Six-axis wrench: forces in N, torques in N·m, in the sensor frame. */
export interface Wrench {
  fx: number;
  fy: number;
  fz: number;
  tx: number;
  ty: number;
  tz: number;
}

export function forceMagnitudeN(w: Wrench): number {
  return Math.hypot(w.fx, w.fy, w.fz);
}

/** A CAN 2.0 frame as the socketcan package shapes it. `tsNs` is the receive time (clock ns). */
export interface CanFrame {
  id: number;
  ext: boolean;
  rtr: boolean;
  data: Buffer;
  tsNs?: bigint;
}

/**
 * Raw-traffic taps: a driver calls them for every frame or line it sends or receives, with the
 * clock time (ns) it saw it, so a trace holds exactly what the driver's link counters count.
 */
export type CanTrace = (frame: CanFrame, atNs: bigint) => void;
export type LineTrace = (dir: 'rx' | 'tx', text: string, atNs: bigint) => void;
