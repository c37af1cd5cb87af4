import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { doubles, doublesFrom, objects } from '../drivers/arrays.ts';

const execFileP = promisify(execFile);

test('doubles, doublesFrom and objects hold the values they are given', (t) => {
  t.deepEqual(doubles(3), [0, 0, 0]);
  t.deepEqual(doubles(2, 1.5), [1.5, 1.5]);
  t.deepEqual(doubles(0), []);
  const source = [1, 2.5, -3];
  const copy = doublesFrom(source);
  t.deepEqual(copy, source);
  copy[0] = 9;
  t.is(source[0], 1, 'a copy, not the array itself');
  const list = objects<{ n: number }>();
  t.deepEqual(list, []);
  list.push({ n: 1 });
  t.is(list.length, 1);
});

// What the helpers are for: V8's elements kind, asked of V8 itself (natives syntax, in a child
// process). `[0, 0]` and `fill(0)` would give small-integer elements, `[]` too.
test('V8 stores doubles() and doublesFrom() as doubles and objects() as objects from the start', async (t) => {
  const script = `
    const { doubles, doublesFrom, objects } = await import(${JSON.stringify(new URL('../drivers/arrays.ts', import.meta.url).href)});
    const kind = new Function('a', 'return %HasDoubleElements(a) ? "double" : %HasSmiElements(a) ? "smi" : %HasObjectElements(a) ? "object" : "other"');
    console.log(JSON.stringify({
      plain: kind(new Array(3).fill(0)),
      doubles: kind(doubles(3)),
      fromIntegers: kind(doublesFrom([1, 2, 3])),
      emptyLiteral: kind([]),
      objects: kind(objects()),
    }));`;
  const out = await execFileP(process.execPath, ['--allow-natives-syntax', '--import=tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
  t.deepEqual(JSON.parse(out.stdout), { plain: 'smi', doubles: 'double', fromIntegers: 'double', emptyLiteral: 'smi', objects: 'object' });
});
