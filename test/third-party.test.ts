/**
 * Tools that are not ours against our emulators and bring-up: python-can's slcan interface opens
 * the emulated arm's adapter like hardware; a device speaking another protocol major version is
 * refused at bring-up with a message naming it.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadRig } from '../harness/config.ts';
import { startEmulators } from '../harness/emulate.ts';
import { createRig } from '../harness/rig.ts';
import { DEFAULT_RIG } from '../harness/run.ts';
import { NO_PYTHON_CAN, PYTHON, ptyRigFile, pythonCan, tempDir } from './helpers.ts';

// Asks every joint for its identity (Info_Req to node 0) and prints the Info frames that answer.
const PY_SLCAN = `
import can, json, sys
bus = can.Bus(interface='slcan', channel=sys.argv[1], bitrate=1000000, ttyBaudrate=115200)
try:
    bus.send(can.Message(arbitration_id=0x7E0, data=[0], is_extended_id=False))
    seen = {}
    while len(seen) < int(sys.argv[2]):
        m = bus.recv(timeout=3)
        if m is None:
            break
        if 0x7E1 <= m.arbitration_id <= 0x7E8:
            seen[m.arbitration_id] = m.data.hex()
    print(json.dumps(seen))
finally:
    bus.shutdown()
`;

(pythonCan ? test : test.skip)(`python-can's slcan interface talks to the emulated arm through its adapter${pythonCan ? '' : NO_PYTHON_CAN}`, async (t) => {
  const { file } = ptyRigFile('py-slcan');
  const loaded = loadRig(file);
  const emu = await startEmulators(loaded, { seed: 2 });
  try {
    const arm = emu.devices.find((d) => d.name === 'arm')!;
    const py = spawn(PYTHON, ['-c', PY_SLCAN, arm.hostPath, '7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    py.stdout.on('data', (b: Buffer) => (out += b.toString()));
    py.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
    t.is(code, 0, err);
    const seen = JSON.parse(out) as Record<string, string>;
    t.deepEqual(Object.keys(seen).map(Number).sort((a, b) => a - b), [0x7e1, 0x7e2, 0x7e3, 0x7e4, 0x7e5, 0x7e6, 0x7e7]);
    // model 2, firmware 1.4.2, protocol 1.0 (the profile's), then the serial number.
    t.true(Object.values(seen).every((hex) => hex.startsWith('020104020100')), JSON.stringify(seen));
  } finally {
    await emu.stop();
  }
});

test('a device that speaks another protocol major version is refused at bring-up, naming it and both versions', async (t) => {
  const dir = tempDir('proto');
  const loaded = loadRig(DEFAULT_RIG);
  const profile = YAML.parse(readFileSync(path.resolve(path.dirname(DEFAULT_RIG), loaded.config.rig.profile), 'utf8')) as { ft: { protocol: string } };
  profile.ft.protocol = '2.1';
  writeFileSync(path.join(dir, 'profile.yaml'), YAML.stringify(profile));
  const rigFile = path.join(dir, 'rig.yaml');
  writeFileSync(rigFile, YAML.stringify({ ...loaded.config, rig: { ...loaded.config.rig, profile: 'profile.yaml', cell: path.resolve(path.dirname(DEFAULT_RIG), loaded.config.rig.cell) } }));
  await t.throwsAsync(createRig(loadRig(rigFile), { seed: 1, epochMs: 0 }), { message: 'wrist_ft: device speaks protocol 2.1, this harness speaks 1.x' });
});
