/** The part of jStat (https://jstat.github.io) dexhil uses; the package ships no types. */
declare module 'jstat' {
  interface JStat {
    gammaln(x: number): number;
    erfc(x: number): number;
    normal: { inv(p: number, mean: number, std: number): number };
    studentt: { inv(p: number, dof: number): number; cdf(x: number, dof: number): number };
  }
  const jstat: { jStat: JStat };
  export default jstat;
}
