/** Fault knobs every simulated peer has (DESIGN.md): what it does wrong, on purpose, seeded. */
export interface FaultKnobs {
  /** Probability that an outgoing line or frame is lost. */
  drop: number;
  /** Probability that an outgoing line has one byte flipped (a CRC error on the host). */
  corrupt: number;
  /** Extra delay before each reply, ms. */
  latencyMs: number;
  /** When true the device stops sending anything (hung firmware). */
  stalled: boolean;
}

export const NO_FAULTS: FaultKnobs = Object.freeze({ drop: 0, corrupt: 0, latencyMs: 0, stalled: false });

/**
 * A device's own knob set, copied from a profile's (it may be turned during a run). Every set has
 * this one shape, whatever order and kinds of number the profile gave: the line peers' code,
 * shared by the hand and the sensors, then reads the knobs of all of them the same way, where
 * copies made by spreading the profile's objects gave V8 a differently shaped object per device
 * (a deoptimization of each peer's send path, `--trace-deopt`).
 */
export function faultKnobs(from: FaultKnobs): FaultKnobs {
  return { drop: from.drop, corrupt: from.corrupt, latencyMs: from.latencyMs, stalled: from.stalled };
}
