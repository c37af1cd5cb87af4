/**
 * The dexterous hand's joint model: 20 joints, 15 actuated, 5 coupled (each finger's distal
 * joint follows its middle joint through a linkage). Shared by the driver and the simulated peer.
 */
export const FINGERS = ['thumb', 'index', 'middle', 'ring', 'little'] as const;
export type Finger = (typeof FINGERS)[number];

export const HAND_JOINTS = [
  'thumb_cmc_abd', 'thumb_cmc_flex', 'thumb_mcp', 'thumb_ip',
  'index_abd', 'index_mcp', 'index_pip', 'index_dip',
  'middle_abd', 'middle_mcp', 'middle_pip', 'middle_dip',
  'ring_abd', 'ring_mcp', 'ring_pip', 'ring_dip',
  'little_abd', 'little_mcp', 'little_pip', 'little_dip',
] as const;

/** Coupled joint index -> [driving joint index, ratio]. */
export const COUPLINGS: ReadonlyMap<number, readonly [number, number]> = new Map([
  [3, [2, 0.8]],
  [7, [6, 0.7]],
  [11, [10, 0.7]],
  [15, [14, 0.7]],
  [19, [18, 0.7]],
]);

/** Indices (into HAND_JOINTS) of the 15 actuated joints, in command order. */
export const ACTUATED: readonly number[] = HAND_JOINTS.map((_, i) => i).filter((i) => !COUPLINGS.has(i));
export const ACTUATED_NAMES: readonly string[] = ACTUATED.map((i) => HAND_JOINTS[i]!);

export const HAND_PROTOCOL_MAJOR = 1;
export const HAND_JOINT_LIMIT_RAD = 1.8;

/** Full 20-joint posture from the 15 actuated positions (coupled joints follow their drivers). */
export function expandPosture(actuated: readonly number[]): number[] {
  // Plain loops over flat tables: the simulated hand expands its posture for every sample.
  const full = new Array<number>(HAND_JOINTS.length).fill(0);
  for (let k = 0; k < ACTUATED.length; k++) full[ACTUATED[k]!] = actuated[k] ?? 0;
  for (let c = 0; c < COUPLED.length; c += 3) full[COUPLED[c]!] = full[COUPLED[c + 1]!]! * COUPLED[c + 2]!;
  return full;
}

/** COUPLINGS flattened: coupled joint, driving joint, ratio, for each. */
const COUPLED: readonly number[] = [...COUPLINGS].flatMap(([j, [driver, ratio]]) => [j, driver, ratio]);

/** Named postures (15 actuated positions, rad). */
export const POSTURES = {
  open: [0.1, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  pinch: [0.6, 0.8, 0.5, 0, 0.9, 0.7, 0, 0.2, 0.2, 0, 0.2, 0.2, 0, 0.2, 0.2],
  power: [0.5, 1.0, 0.9, 0, 1.2, 1.1, 0, 1.2, 1.1, 0, 1.2, 1.1, 0, 1.2, 1.1],
  point: [0.4, 1.0, 0.9, 0, 0, 0, 0, 1.3, 1.2, 0, 1.3, 1.2, 0, 1.3, 1.2],
} as const satisfies Record<string, readonly number[]>;
export type PostureName = keyof typeof POSTURES;
