import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { VirtualClock } from '../harness/clock.ts';
import { frameBits, VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import type { CanChannel } from '../drivers/transport/can.ts';

const execFileP = promisify(execFile);


/** A virtual CAN bus on a fresh virtual clock with two started channels. */
function twoOnABus(bitrate: number): { clock: VirtualClock; bus: VirtualCanBus; a: CanChannel; b: CanChannel } {
  const clock = new VirtualClock();
  const bus = new VirtualCanBus(clock, { bitrate });
  const a = bus.channel('a');
  const b = bus.channel('b');
  a.start();
  b.start();
  return { clock, bus, a, b };
}

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

test('virtual clock: one abort wakes every sleep on its signal, in the order they began; sleeps that ended before it are left alone', async (t) => {
  const clock = new VirtualClock();
  const ac = new AbortController();
  const other = new AbortController();
  const seen: string[] = [];
  const watch = (name: string, p: Promise<void>): Promise<void> =>
    p.then(
      () => void seen.push(`${name} woke@${clock.nowMs()}`),
      (err: Error) => void seen.push(`${name} ${err.message}@${clock.nowMs()}`),
    );
  const all = [
    watch('short', clock.sleep(2, ac.signal)),
    watch('a', clock.sleep(100, ac.signal)),
    watch('b', clock.sleep(50, ac.signal)),
    watch('elsewhere', clock.sleep(20, other.signal)),
    watch('plain', clock.sleep(30)),
  ];
  clock.setTimer(10, () => ac.abort(new Error('stop')));
  await Promise.all(all);
  t.deepEqual(seen, ['short woke@2', 'a stop@10', 'b stop@10', 'elsewhere woke@20', 'plain woke@30']);
  // The aborted sleeps' timers are gone: nothing is left to fire at 50 or 100.
  await clock.sleep(200);
  t.is(clock.nowMs(), 230);
  await t.throwsAsync(clock.sleep(5, ac.signal), { message: 'stop' }, 'a sleep on an aborted signal fails at once');
});

test('virtual clock: work a timer starts (nextTicks, promise chains, timers they set) settles before time moves', async (t) => {
  const clock = new VirtualClock({ epochMs: 0 });
  const seen: string[] = [];
  clock.setTimer(10, () => {
    process.nextTick(() => {
      seen.push(`tick@${clock.nowMs()}`);
      void Promise.resolve()
        .then(() => new Promise<void>((resolve) => process.nextTick(resolve)))
        .then(() => {
          seen.push(`chain@${clock.nowMs()}`);
          clock.setTimer(0, () => seen.push(`zero@${clock.nowMs()}`));
        });
    });
  });
  clock.setTimer(11, () => seen.push(`next@${clock.nowMs()}`));
  await clock.sleep(20);
  t.deepEqual(seen, ['tick@10', 'chain@10', 'zero@10', 'next@11']);
});

test('virtual clock: a long run of virtual time still lets real I/O through', async (t) => {
  const clock = new VirtualClock({ epochMs: 0 });
  let instants = 0;
  const ticker = clock.setInterval(1, () => instants++);
  // A real timer and a real file read complete while the virtual interval keeps the pump busy.
  const seenAt = await new Promise<number>((resolve) => setTimeout(() => resolve(instants), 30));
  const text = await readFile(new URL(import.meta.url), 'utf8');
  ticker.cancel();
  t.true(text.includes('keeps the pump busy'));
  t.true(seenAt > 5, `the pump ran ${seenAt} instants before the real timer fired`);
  t.true(instants > seenAt, 'virtual time went on after real I/O');
});

test('virtual clock: a timer that throws is an uncaught error, and time goes on for the others', async (t) => {
  // In a child process: the error must reach process-level 'uncaughtException', which ava owns here.
  const script = `
    import { VirtualClock } from './harness/clock.ts';
    const clock = new VirtualClock({ epochMs: 0 });
    const errors = [];
    process.on('uncaughtException', (e) => errors.push(e.message));
    clock.setTimer(5, () => { throw new Error('boom in a timer'); });
    clock.setTimer(5, () => Promise.reject(new Error('rejected in a timer')).catch(() => {}));
    clock.sleep(100).then(() => console.log(JSON.stringify({ errors, nowMs: clock.nowMs() })));
  `;
  const out = await execFileP(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
  t.deepEqual(JSON.parse(out.stdout), { errors: ['boom in a timer'], nowMs: 100 });
});

test('virtual CAN bus: a saturated 1 Mbit/s bus carries about 7,400 8-byte frames per second', async (t) => {
  const { clock, a: tx, b: rx } = twoOnABus(1_000_000);
  let received = 0;
  rx.addListener('onMessage', () => received++);
  for (let i = 0; i < 20_000; i++) tx.send({ id: 0x100, ext: false, rtr: false, data: Buffer.alloc(8, 0x55) });
  await clock.sleep(1000);
  t.is(frameBits({ ext: false, rtr: false, data: Buffer.alloc(8) }), 135);
  t.true(received >= 7300 && received <= 7500, `received ${received}`);
});

test('virtual CAN bus: a frame a receiver sends back as it receives one waits for the wire, one frame at a time', async (t) => {
  const { clock, bus, a: host, b: motor } = twoOnABus(1_000_000);
  const frameMs = frameBits({ ext: false, rtr: false, data: Buffer.alloc(8) }) / 1000;
  // The motor answers every command within its receive callback, twice.
  motor.addListener('onMessage', (f) => {
    motor.send({ id: f.id + 0x100, ext: false, rtr: false, data: Buffer.alloc(8) });
    motor.send({ id: f.id + 0x100, ext: false, rtr: false, data: Buffer.alloc(8) });
  });
  const arrivals: number[] = [];
  host.addListener('onMessage', () => arrivals.push(clock.nowMs()));
  host.send({ id: 0x001, ext: false, rtr: false, data: Buffer.alloc(8) });
  await clock.sleep(10);
  // The command ends at 1 frame time; the answers follow it on the wire, each a frame time long.
  t.is(arrivals.length, 2);
  t.is(arrivals[0]!.toFixed(6), (2 * frameMs).toFixed(6));
  t.is(arrivals[1]!.toFixed(6), (3 * frameMs).toFixed(6));
  t.is(bus.framesCarried, 3);
});

test('virtual CAN bus: the lowest id wins arbitration', async (t) => {
  const { clock, a, b } = twoOnABus(500_000);
  const order: number[] = [];
  b.addListener('onMessage', (f) => order.push(f.id));
  a.send({ id: 0x300, ext: false, rtr: false, data: Buffer.alloc(1) }); // starts at once, bus idle
  a.send({ id: 0x200, ext: false, rtr: false, data: Buffer.alloc(1) });
  a.send({ id: 0x100, ext: false, rtr: false, data: Buffer.alloc(1) });
  await clock.sleep(10);
  t.deepEqual(order, [0x300, 0x100, 0x200]);
});
