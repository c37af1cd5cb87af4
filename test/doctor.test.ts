/**
 * `dexhil emulate` in its own process, as a user runs it, and `dexhil doctor` against it.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ptyRigFile, runCli } from './helpers.ts';

const BIN = path.resolve('bin/dexhil.js');

/** `dexhil emulate` in its own process, once its output satisfies `ready`. */
async function emulateProcess(args: string[], ready: (out: string) => boolean) {
  const child = spawn(process.execPath, [BIN, 'emulate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = { out: '', err: '' };
  child.stderr.on('data', (b: Buffer) => (io.err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      io.out += b.toString();
      if (ready(io.out)) resolve();
    });
    void exited.then((code) => reject(new Error(`emulate exited ${code}: ${io.err}`)));
  });
  return { io, exited, stop: () => child.kill('SIGTERM') };
}

test('doctor against `dexhil emulate` prints the table and exits 0; a wrong port path exits 1 naming device and path', async (t) => {
  const { file, dir } = ptyRigFile('doctor');
  const { file: badFile } = ptyRigFile('doctor-bad', (c) => {
    for (const [name, d] of Object.entries(c.devices)) d['port'] = path.join(dir, name);
    c.devices['wrist_ft']!['port'] = path.join(dir, 'no-such-sensor');
  });
  const emu = await emulateProcess(['--rig', file], (out) => out.includes('emulators ready'));
  try {
    t.regex(emu.io.out, new RegExp(`^arm\\s+${path.join(dir, 'arm')}\\s+slcan`, 'm'));

    const good = await runCli(['doctor', '--rig', file, '--seconds', '2']);
    t.is(good.code, 0, good.out);
    for (const name of ['arm', 'hand', 'wrist_ft', 'table_ft']) t.regex(good.out, new RegExp(`^${name}\\s+(slcan|serial)\\s+real\\s.*\\sok$`, 'm'));
    t.regex(good.out, /^wrist_ft .*DXF-6A\s+3\.0\.4\s+1\.0\s+SIM-WRIST_FT-\d+/m);

    const bad = await runCli(['doctor', '--rig', badFile, '--seconds', '1']);
    t.is(bad.code, 1);
    t.regex(bad.out, /^wrist_ft\s.*FAIL$/m);
    t.true(bad.out.includes(`wrist_ft: no such serial port ${path.join(dir, 'no-such-sensor')} (devices.wrist_ft.port in ${badFile})`), bad.out);
    t.regex(bad.out, /^hand\s.*\sok$/m);
  } finally {
    emu.stop();
  }
  t.is(await emu.exited, 0, emu.io.err);
  t.false(existsSync(path.join(dir, 'arm')), 'emulate removes its pty links when it stops');
});

test('emulate --at pulls a cable on schedule (the port path goes away); a bad --at is a usage error', async (t) => {
  const { file, dir } = ptyRigFile('emulate-at');
  const bad = await runCli(['emulate', '--rig', file, '--at', '5:gripper.reboot']);
  t.is(bad.code, 2);
  t.false(existsSync(path.join(dir, 'hand')), 'a bad option is caught before any pty is made');

  const emu = await emulateProcess(['--rig', file, '--at', '0.5:table_ft.disconnect', '--at', '0.5:hand.reboot=200'], (out) => out.includes('table_ft cable pulled') && out.includes('hand reboots'));
  try {
    t.regex(emu.io.out, /^0\.5 s: hand reboots \(200 ms\)$/m);
    // The line is printed as the unplug starts; give it a moment to finish.
    for (let i = 0; i < 50 && existsSync(path.join(dir, 'table_ft')); i++) await new Promise((r) => setTimeout(r, 20));
    t.false(existsSync(path.join(dir, 'table_ft')));
    t.true(existsSync(path.join(dir, 'hand')));
  } finally {
    emu.stop();
  }
  t.is(await emu.exited, 0, emu.io.err);
});
