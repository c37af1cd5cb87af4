/** Argument parsers of the `dexhil` command line: each refuses a bad value naming the option. */
import { InvalidArgumentError } from 'commander';

export function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}, got '${value}'`);
    return Number(value);
  };
}
export const positiveInt = (name: string) => wholeNumber(name, 1);
export function fraction(name: string) {
  return (value: string): number => {
    const v = Number(value);
    if (!/^(0?\.\d+|0|1)$/.test(value) || !(v > 0 && v < 1)) throw new InvalidArgumentError(`${name} must be a number between 0 and 1, got '${value}'`);
    return v;
  };
}
export const nonNegativeInt = (name: string) => wholeNumber(name, 0);

export function seedArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw new InvalidArgumentError(`seed must be a whole number 0..4294967295, got '${value}'`);
  return Number(value);
}
