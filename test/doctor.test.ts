/**
 * `dexhil emulate` in its own process, as a user runs it, and `dexhil doctor` against it.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { main } from '../harness/cli.ts';
import { ptyRigFile } from './helpers.ts';

const BIN = path.resolve('bin/dexhil.js');

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(args, (s) => (out += s));
  return { code, out };
}

test('doctor against `dexhil emulate` prints the table and exits 0; a wrong port path exits 1 naming device and path', async (t) => {
  const { file, dir } = ptyRigFile('doctor');
  const { file: badFile } = ptyRigFile('doctor-bad', (c) => {
    for (const [name, d] of Object.entries(c.devices)) d['port'] = path.join(dir, name);
    c.devices['wrist_ft']!['port'] = path.join(dir, 'no-such-sensor');
  });
  const emu = spawn(process.execPath, [BIN, 'emulate', '--rig', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  emu.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => emu.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      emu.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('emulators ready')) resolve();
      });
      void exited.then((code) => reject(new Error(`emulate exited ${code}: ${err}`)));
    });
    t.regex(out, new RegExp(`^arm\\s+${path.join(dir, 'arm')}\\s+slcan`, 'm'));

    const good = await cli(['doctor', '--rig', file, '--seconds', '2']);
    t.is(good.code, 0, good.out);
    for (const name of ['arm', 'hand', 'wrist_ft', 'table_ft']) t.regex(good.out, new RegExp(`^${name}\\s+(slcan|serial)\\s+real\\s.*\\sok$`, 'm'));
    t.regex(good.out, /^wrist_ft .*DXF-6A\s+3\.0\.4\s+1\.0\s+SIM-WRIST_FT-\d+/m);

    const bad = await cli(['doctor', '--rig', badFile, '--seconds', '1']);
    t.is(bad.code, 1);
    t.regex(bad.out, /^wrist_ft\s.*FAIL$/m);
    t.true(bad.out.includes(`wrist_ft: no such serial port ${path.join(dir, 'no-such-sensor')} (devices.wrist_ft.port in ${badFile})`), bad.out);
    t.regex(bad.out, /^hand\s.*\sok$/m);
  } finally {
    emu.kill('SIGTERM');
  }
  t.is(await exited, 0, err);
  t.false(existsSync(path.join(dir, 'arm')), 'emulate removes its pty links when it stops');
});

test('emulate --at pulls a cable on schedule (the port path goes away); a bad --at is a usage error', async (t) => {
  const { file, dir } = ptyRigFile('emulate-at');
  const bad = await cli(['emulate', '--rig', file, '--at', '5:gripper.reboot']);
  t.is(bad.code, 2);
  t.false(existsSync(path.join(dir, 'hand')), 'the emulators started before the bad option was read are stopped');

  const emu = spawn(process.execPath, [BIN, 'emulate', '--rig', file, '--at', '0.5:table_ft.disconnect', '--at', '0.5:hand.reboot=200'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  emu.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => emu.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      emu.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('table_ft cable pulled') && out.includes('hand reboots')) resolve();
      });
      void exited.then((code) => reject(new Error(`emulate exited ${code}: ${err}`)));
    });
    t.regex(out, /^0\.5 s: hand reboots \(200 ms\)$/m);
    // The line is printed as the unplug starts; give it a moment to finish.
    for (let i = 0; i < 50 && existsSync(path.join(dir, 'table_ft')); i++) await new Promise((r) => setTimeout(r, 20));
    t.false(existsSync(path.join(dir, 'table_ft')));
    t.true(existsSync(path.join(dir, 'hand')));
  } finally {
    emu.kill('SIGTERM');
  }
  t.is(await exited, 0, err);
});
