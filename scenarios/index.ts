/** The scenario registry: every scenario `dexhil list` shows and `dexhil run` can run. */
import type { ScenarioDef } from '../harness/scenario.ts';
import { foldFabric } from './fold-fabric.ts';
import { smoke } from './smoke.ts';
import { toiletPaper } from './toilet-paper.ts';
import { zipper } from './zipper.ts';

export const SCENARIOS: readonly ScenarioDef[] = [smoke, foldFabric, zipper, toiletPaper];

export function findScenario(name: string): ScenarioDef | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
