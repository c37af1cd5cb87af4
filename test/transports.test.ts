/**
 * Real transports over real pseudo-terminals: slcan bring-up and refusals, `transport: auto`
 * falling back to the simulated peer (said on the terminal, in the manifest and in every row),
 * a missing serial port, and SocketCAN where an interface is named.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RealClock } from '../harness/clock.ts';
import { loadRig } from '../harness/config.ts';
import { createRig } from '../harness/rig.ts';
import { runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';
import { SlcanAdapterEmulator } from '../drivers/sim/slcan-adapter.ts';
import { createPtyPair } from '../drivers/transport/pty.ts';
import { openSerialPort } from '../drivers/transport/serial-port.ts';
import { SlcanChannel } from '../drivers/transport/slcan.ts';
import { VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import type { CanFrame } from '../drivers/types.ts';
import { ptyRigFile, readCsv, tempDir } from './helpers.ts';

async function adapterOnPty(busBitrate: number) {
  const clock = new RealClock();
  const dir = tempDir('slcan');
  const pair = await createPtyPair(path.join(dir, 'host'), path.join(dir, 'dev'), clock);
  const devEnd = await openSerialPort({ path: pair.devicePath, baud: 115200, clock });
  const bus = new VirtualCanBus(clock, { bitrate: busBitrate });
  const adapter = new SlcanAdapterEmulator(devEnd, bus.channel('adapter'), clock, { busBitrate });
  const node = bus.channel('node');
  node.start();
  const host = await openSerialPort({ path: pair.hostPath, baud: 115200, clock });
  return {
    clock, host, node, adapter,
    async close() {
      adapter.stop();
      await host.close().catch(() => undefined);
      await devEnd.close();
      await pair.close();
    },
  };
}

test('slcan over a pty: bring-up, frames both ways, adapter version read', async (t) => {
  const a = await adapterOnPty(500_000);
  try {
    const ch = new SlcanChannel(a.host, { bitrate: 500_000, clock: a.clock });
    await ch.open();
    t.deepEqual(ch.version, { hardware: '10', software: '11' });
    const got: CanFrame[] = [];
    a.node.addListener('onMessage', (f) => got.push(f));
    const back: CanFrame[] = [];
    ch.addListener('onMessage', (f) => back.push(f));
    ch.send({ id: 0x123, ext: false, rtr: false, data: Buffer.from([1, 2, 3]) });
    ch.send({ id: 0x1abcdef, ext: true, rtr: false, data: Buffer.alloc(8, 0xee) });
    a.node.send({ id: 0x7e1, ext: false, rtr: false, data: Buffer.from('DEADBEEF', 'hex') });
    // Real time over a pty: on a loaded machine the answers can take longer than 100 ms.
    for (const until = Date.now() + 3000; Date.now() < until && (got.length < 2 || back.length < 1 || ch.counters.txAcks < 2); ) await a.clock.sleep(20);
    // Both frames; in either order: when they reach the bus together, arbitration lets the
    // extended one go first (its first 11 id bits, 0x6A, are below 0x123).
    t.deepEqual(got.map((f) => [f.id, f.ext, f.data.toString('hex')]).sort((x, y) => Number(x[0]) - Number(y[0])), [[0x123, false, '010203'], [0x1abcdef, true, 'eeeeeeeeeeeeeeee']]);
    t.deepEqual(back.map((f) => [f.id, f.data.toString('hex')]), [[0x7e1, 'deadbeef']]);
    t.true(typeof back[0]!.tsNs === 'bigint');
    t.is(ch.counters.txAcks, 2);
    t.is(ch.counters.errors, 0);
  } finally {
    await a.close();
  }
});

test('slcan: a bitrate the bus does not run at is refused at open with the port named', async (t) => {
  const a = await adapterOnPty(1_000_000);
  try {
    const ch = new SlcanChannel(a.host, { bitrate: 500_000, clock: a.clock });
    const err = await t.throwsAsync(ch.open());
    t.is((err as { code?: string }).code, 'DEVICE_REFUSED');
    t.true(err!.message.includes(a.host.path) && err!.message.includes("'open'"), err!.message);
    t.throws(() => ch.send({ id: 1, ext: false, rtr: false, data: Buffer.alloc(1) }), { message: /not open/ });
  } finally {
    await a.close();
  }
});

test('slcan: a port where nothing answers times out naming the port', async (t) => {
  const clock = new RealClock();
  const dir = tempDir('slcan-silent');
  const pair = await createPtyPair(path.join(dir, 'host'), path.join(dir, 'dev'), clock);
  const host = await openSerialPort({ path: pair.hostPath, baud: 115200, clock });
  try {
    const err = await t.throwsAsync(new SlcanChannel(host, { bitrate: 1_000_000, clock, timeoutMs: 200 }).open());
    t.is((err as { code?: string }).code, 'DEVICE_TIMEOUT');
    t.true(err!.message.includes(pair.hostPath), err!.message);
  } finally {
    await host.close();
    await pair.close();
  }
});

test('a missing serial port names the device, the path and the config file', async (t) => {
  const { file, dir } = ptyRigFile('missing-port');
  const err = await t.throwsAsync(createRig(loadRig(file), { seed: 1 }));
  t.is((err as { code?: string }).code, 'PORT_NOT_FOUND');
  t.true(err!.message.includes(`no such serial port ${path.join(dir, 'arm')} (devices.arm.port in ${file})`), err!.message);
});

test('transport auto falls back to the simulated peer: said on the terminal, in the manifest and in every row', async (t) => {
  const { file } = ptyRigFile('auto', (c) => {
    for (const d of Object.values(c.devices)) d['transport'] = 'auto';
  });
  const notices: string[] = [];
  const out = tempDir('auto-out');
  const r = await runPlan({ rigFile: file, scenarios: [findScenario('smoke')!], trials: 2, seed: 1, outDir: out, notice: (n) => notices.push(n) });
  t.is(r.clockKind, 'virtual');
  t.is(notices.length, 4);
  t.regex(notices[0]!, /^devices\.arm: transport auto: no port .*arm, using the simulated arm$/);
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { notices: string[]; rig_mode: Record<string, string> };
  t.deepEqual(manifest.notices, notices);
  t.deepEqual(manifest.rig_mode, { arm: 'sim', hand: 'sim', wrist_ft: 'sim', table_ft: 'sim' });
  for (const row of readCsv(path.join(out, 'trials.csv'))) t.is(row['rig_mode'], 'arm=sim;hand=sim;wrist_ft=sim;table_ft=sim');
});

const iface = process.env['HIL_CAN_IFACE'];
const canTest = iface === undefined ? test.skip : test;
canTest(`SocketCAN: frames sent on ${iface ?? '(set HIL_CAN_IFACE=vcan0; this kernel has no CAN sockets)'} come back on a second socket`, async (t) => {
  const { openSocketCan } = await import('../drivers/transport/socketcan.ts');
  const clock = new RealClock();
  const a = openSocketCan(iface!, clock);
  const b = openSocketCan(iface!, clock);
  try {
    const got: CanFrame[] = [];
    b.addListener('onMessage', (f) => got.push(f));
    a.send({ id: 0x321, ext: false, rtr: false, data: Buffer.from([9, 8, 7]) });
    await clock.sleep(100);
    t.deepEqual(got.map((f) => [f.id, f.data.toString('hex')]), [[0x321, '090807']]);
    t.throws(() => a.send({ id: 1, ext: false, rtr: false, data: Buffer.alloc(9) }), { message: /at most 8/ });
  } finally {
    a.stop();
    b.stop();
  }
});

test('a paced serial port keeps write order when a due write finds an earlier one still waiting', async (t) => {
  const clock = new RealClock();
  const dir = tempDir('paced');
  const pair = await createPtyPair(path.join(dir, 'host'), path.join(dir, 'dev'), clock);
  const device = await openSerialPort({ path: pair.devicePath, baud: 9600, clock, paced: true });
  const host = await openSerialPort({ path: pair.hostPath, baud: 9600, clock });
  try {
    let got = '';
    host.onData((b) => (got += b.toString('latin1')));
    const spin = (ms: number): void => {
      const until = clock.nowMs() + ms;
      while (clock.nowMs() < until); // real time passes, no timer can fire
    };
    // At 9600 baud a byte takes about 1.04 ms: `a` leaves at once, `b` waits for it, and by the
    // time `c` is written its own slot (after `b`) has come while `b`'s timer has not run yet.
    device.write('a');
    device.write('b');
    spin(3);
    device.write('c');
    device.write('d');
    // Real time over a pty: on a loaded machine the bytes can take longer than 50 ms to come through.
    for (const until = Date.now() + 3000; Date.now() < until && got.length < 4; ) await clock.sleep(10);
    t.is(got, 'abcd');
  } finally {
    await host.close();
    await device.close();
    await pair.close();
    clock.close();
  }
});
