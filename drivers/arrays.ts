/**
 * Arrays made in the representation they will hold for their whole life.
 *
 * V8 stores an array's elements as small integers, as doubles or as objects ("elements kinds"),
 * and moves an array from one to the next the first time it is given a value that does not fit:
 * `new Array(7).fill(0)` is small integers until a joint angle of 0.31 rad arrives, `[]` is small
 * integers until a timer is pushed. Each move changes the array's hidden class. Optimized code
 * that has only met the later class is thrown away when an array of the earlier class reaches it,
 * and compiled again: that is what happens when the next trial block's rig makes its arrays
 * afresh. V8 remembers a move where an array is made, but only once the code making it has run
 * often enough to keep feedback, which a rig's constructors never do. (`--trace-deopt`: "wrong
 * map" and "not a Smi" in the clock's timer heap, the CAN bus's queue, the arm driver's and the
 * hand's joint arrays.)
 */

/** `n` numbers, each `value` (0 by default), stored as doubles from the start. */
export function doubles(n: number, value = 0): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(0.5);
  return a.fill(value);
}

/** An empty array for objects, stored as such from the start. */
export function objects<T extends object>(): T[] {
  const a: (T | undefined)[] = [undefined];
  a.pop();
  return a as T[];
}

/** A copy of `values`, stored as doubles whatever they are. */
export function doublesFrom(values: readonly number[]): number[] {
  const a = doubles(values.length);
  for (let i = 0; i < values.length; i++) a[i] = values[i]!;
  return a;
}
