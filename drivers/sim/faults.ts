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
