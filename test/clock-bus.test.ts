import test from 'ava';
import { VirtualClock } from '../harness/clock.ts';
import { frameBits, VirtualCanBus } from '../drivers/transport/virtual-can.ts';

test('virtual clock: timers fire in due order, ties in scheduling order, time jumps', async (t) => {
  const clock = new VirtualClock({ epochMs: 0 });
  const seen: string[] = [];
  clock.setTimer(50, () => seen.push(`b@${clock.nowMs()}`));
  clock.setTimer(10, () => seen.push(`a@${clock.nowMs()}`));
  clock.setTimer(50, () => seen.push(`c@${clock.nowMs()}`));
  await clock.sleep(3_600_000); // an hour of virtual time
  t.deepEqual(seen, ['a@10', 'b@50', 'c@50']);
  t.is(clock.nowMs(), 3_600_000);
});

test('virtual clock: sleep rejects on abort and the timer is cancelled', async (t) => {
  const clock = new VirtualClock();
  const ac = new AbortController();
  clock.setTimer(5, () => ac.abort(new Error('stop')));
  await t.throwsAsync(clock.sleep(1000, ac.signal), { message: 'stop' });
  t.is(clock.nowMs(), 5);
});

test('virtual CAN bus: a saturated 1 Mbit/s bus carries about 7,400 8-byte frames per second', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualCanBus(clock, { bitrate: 1_000_000 });
  const tx = bus.channel('tx');
  const rx = bus.channel('rx');
  tx.start();
  rx.start();
  let received = 0;
  rx.addListener('onMessage', () => received++);
  for (let i = 0; i < 20_000; i++) tx.send({ id: 0x100, ext: false, rtr: false, data: Buffer.alloc(8, 0x55) });
  await clock.sleep(1000);
  t.is(frameBits({ ext: false, rtr: false, data: Buffer.alloc(8) }), 135);
  t.true(received >= 7300 && received <= 7500, `received ${received}`);
});

test('virtual CAN bus: the lowest id wins arbitration', async (t) => {
  const clock = new VirtualClock();
  const bus = new VirtualCanBus(clock, { bitrate: 500_000 });
  const a = bus.channel('a');
  const b = bus.channel('b');
  a.start();
  b.start();
  const order: number[] = [];
  b.addListener('onMessage', (f) => order.push(f.id));
  a.send({ id: 0x300, ext: false, rtr: false, data: Buffer.alloc(1) }); // starts at once, bus idle
  a.send({ id: 0x200, ext: false, rtr: false, data: Buffer.alloc(1) });
  a.send({ id: 0x100, ext: false, rtr: false, data: Buffer.alloc(1) });
  await clock.sleep(10);
  t.deepEqual(order, [0x300, 0x100, 0x200]);
});
