/**
 * The arm's CAN database is read by a third-party tool (canmatrix, Debian python3-canmatrix), and
 * what that tool reads agrees with what our codec (socketcan's KCD parser) packs.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { ArmCodec, DEFAULT_KCD } from '../drivers/arm/codec.ts';

const PY = `
import json, sys, canmatrix.formats
db = canmatrix.formats.loadp_flat(sys.argv[1])
out = {}
for f in db.frames:
    out[f.name] = {"id": f.arbitration_id.id, "size": f.size, "signals": {s.name: [s.start_bit, s.size, float(s.factor), float(s.offset), s.is_signed] for s in f.signals}}
print(json.dumps(out))
`;

test('canmatrix loads the KCD: 25 messages, and decoding a frame of ours with its layout gives our values', (t) => {
  const r = spawnSync('/usr/bin/python3', ['-c', PY, DEFAULT_KCD], { encoding: 'utf8' });
  if (r.status !== 0 && /No module named 'canmatrix'/.test(r.stderr)) return t.fail('python3-canmatrix is missing: apt-get install python3-canmatrix (.ci/run installs it)');
  t.is(r.status, 0, r.stderr);
  const db = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, { id: number; size: number; signals: Record<string, [number, number, number, number, boolean]> }>;
  t.is(Object.keys(db).length, 25);
  t.is(db['Fb_J3']!.id, 0x103);
  t.is(db['Cmd_J7']!.size, 8);
  // Unpack our feedback frame by canmatrix's reading of the layout (KCD offsets count from the
  // frame's first bit, big-endian within the 64-bit word for these signals).
  const codec = new ArmCodec(DEFAULT_KCD);
  const frame = codec.feedback({ joint: 3, error: 0, positionRad: 1.25, velocityRadS: -2.5, torqueNm: 3.0, tempMosC: 41, tempRotorC: 44 });
  const word = frame.data.readBigUInt64BE(0);
  const value = (name: string): number => {
    const [start, size, factor, offset] = db['Fb_J3']!.signals[name]!;
    const raw = Number((word >> BigInt(64 - start - size)) & ((1n << BigInt(size)) - 1n));
    return raw * factor + offset;
  };
  t.true(Math.abs(value('pos') - 1.25) < 0.0004, `pos ${value('pos')}`);
  t.true(Math.abs(value('vel') + 2.5) < 0.022, `vel ${value('vel')}`);
  t.true(Math.abs(value('torque') - 3.0) < 0.009, `torque ${value('torque')}`);
  t.is(value('t_rotor'), 44);
  return undefined;
});
