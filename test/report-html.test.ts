/**
 * report.html and compare --html, rendered in headless Chromium (Debian `chromium`, driven by
 * playwright-core; .ci/run installs it): no console error, no network request, every chart drawn
 * (a canvas of non-zero size with pixels on it), the numbers shown equal to trials.csv, and a
 * device string carrying `<script>` shown as text, never run. Screenshots go to
 * test-output/report-html/.
 */
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import YAML from 'yaml';
import { parse } from 'csv-parse/sync';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { wilson } from '../harness/stats.ts';
import { findScenario } from '../scenarios/index.ts';
import { readCsv, runCli, tempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve('test-output', 'report-html');
const EVIL = `<script>window.__pwned = 1; alert("x")</script>`;

const haveChromium = existsSync(CHROMIUM);
// On CI a missing Chromium fails the tests (below); elsewhere they are skipped.
const browserTest = haveChromium || process.env['CI'] === 'true' ? test.serial : test.serial.skip;

/** Two runs of two task scenarios: the default firmware (with a hostile hand model string) and the regression profile. */
async function makeRuns(): Promise<{ a: string; b: string }> {
  const dir = tempDir('report-html');
  const profile = YAML.parse(readFileSync('fixtures/profiles/default.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
  profile['hand']!['model'] = EVIL; // no comma: the line protocol separates fields with them
  writeFileSync(path.join(dir, 'hostile.yaml'), YAML.stringify(profile));
  const scenarios = [findScenario('zipper')!, findScenario('toilet-paper')!];
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  await runPlan({ rigFile: DEFAULT_RIG, profileFile: path.join(dir, 'hostile.yaml'), scenarios, trials: 16, seed: 3, outDir: a, epochMs: 1_700_000_000_000 });
  await runPlan({ rigFile: DEFAULT_RIG, profileFile: 'fixtures/profiles/regression.yaml', scenarios, trials: 16, seed: 3, outDir: b, epochMs: 1_700_000_000_000 });
  return { a, b };
}

let runs: Promise<{ a: string; b: string }> | undefined;
const getRuns = (): Promise<{ a: string; b: string }> => (runs ??= makeRuns());

let browser: Browser | undefined;
test.after.always(async () => {
  await browser?.close();
});

/** Opens a page and records console errors, page errors and any request that is not the file itself. */
async function open(file: string): Promise<{ page: Page; problems: string[] }> {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  const url = `file://${path.resolve(file)}`;
  page.on('request', (r) => {
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
  return { page, problems };
}

/** Each drawn canvas: its chart, size, and whether any pixel differs from a blank canvas. */
function drawnCanvases(page: Page): Promise<{ chart: string; width: number; height: number; inked: boolean }[]> {
  return page.$$eval('canvas[data-drawn]', (cs) =>
    cs.map((c) => {
      const canvas = c as HTMLCanvasElement;
      const blank = document.createElement('canvas');
      blank.width = canvas.width;
      blank.height = canvas.height;
      return { chart: canvas.dataset['chart'] ?? '', width: canvas.width, height: canvas.height, inked: canvas.toDataURL() !== blank.toDataURL() };
    }),
  );
}

browserTest('report.html of a simulated run: charts drawn, numbers as in trials.csv, no console error, no network, device text escaped', async (t) => {
  if (!haveChromium) return t.fail(`${CHROMIUM} is missing on CI: .ci/run installs Debian's chromium`);
  const { a } = await getRuns();
  const file = path.join(a, 'report.html');
  const html = readFileSync(file, 'utf8');
  t.false(html.includes(EVIL), 'the raw <script> string is not in the page');
  t.true(html.includes('&lt;script&gt;window.__pwned = 1; alert(&quot;x&quot;)&lt;/script&gt;'));
  // In CSV it is one quoted cell (its quotes doubled) and reads back as sent.
  const devicesCsv = readFileSync(path.join(a, 'devices.csv'), 'utf8');
  t.true(devicesCsv.includes(`"${EVIL.replace(/"/g, '""')}"`));
  t.is((parse(devicesCsv, { columns: true }) as Record<string, string>[]).find((d) => d['device'] === 'hand')!['model'], EVIL);

  const { page, problems } = await open(file);
  t.deepEqual(problems, []);
  t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  t.is((await page.locator('#devices tr', { hasText: 'hand' }).locator('td').nth(4).textContent()) ?? '', EVIL);
  t.regex((await page.locator('#rig-mode').textContent()) ?? '', /^SIMULATED rig/);

  // The charts drawn up front: rates, durations, corrections by kind and by stage, one funnel per scenario.
  const upFront = await drawnCanvases(page);
  t.deepEqual(upFront.map((c) => c.chart).sort(), ['durations', 'funnel', 'funnel', 'kinds', 'rates', 'stages']);
  for (const c of upFront) t.true(c.width > 0 && c.height > 0 && c.inked, JSON.stringify(c));
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'report.png'), fullPage: true });

  // The signal plots draw as they scroll into view.
  const trials = readCsv(path.join(a, 'trials.csv'));
  const corrections = readCsv(path.join(a, 'corrections.csv'));
  const withEvents = trials.filter((r) => ['fail', 'error', 'timeout'].includes(r['outcome']!) || corrections.some((c) => c['scenario'] === r['scenario'] && c['trial'] === r['trial']));
  t.true(withEvents.length > 0);
  t.is(await page.locator('#plots canvas').count(), withEvents.length);
  await page.locator('#plots canvas').first().scrollIntoViewIfNeeded();
  await page.waitForSelector('#plots canvas[data-drawn]');
  const plots = (await drawnCanvases(page)).filter((c) => c.chart === 'plot');
  t.true(plots.length > 0);
  for (const c of plots) t.true(c.width > 0 && c.height > 0 && c.inked, JSON.stringify(c));
  await page.screenshot({ path: path.join(SHOTS, 'report-signals.png') });

  // The numbers shown are trials.csv's.
  const shown = await page.$$eval('#summary tr', (rows) => rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  const scenarios = [...new Set(trials.map((r) => r['scenario']!))];
  t.is(shown.length, scenarios.length);
  const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
  for (const row of shown) {
    const mine = trials.filter((r) => r['scenario'] === row[0]);
    const n = (o: string): number => mine.filter((r) => r['outcome'] === o).length;
    const judged = n('pass') + n('fail');
    const ci = wilson(n('pass'), judged);
    t.deepEqual(row.slice(2, 11), [mine.length, n('pass'), n('fail'), n('error'), n('timeout'), n('aborted'), pct(n('pass') / judged), pct(ci.lo), pct(ci.hi)].map(String), row[0]);
  }
  const failedShown = await page.$$eval('#failed tr', (rows) => rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  const failed = trials.filter((r) => ['fail', 'error', 'timeout'].includes(r['outcome']!));
  t.deepEqual(
    failedShown.map((r) => [r[0], r[1], r[3], r[4]]),
    failed.map((r) => [r['scenario'], r['trial'], r['outcome'], r['failure_label']]),
  );
  t.log(`screenshots: ${SHOTS}`);
  await page.close();
});

browserTest('compare --html: both builds side by side, verdicts as compare --json says, charts drawn', async (t) => {
  if (!haveChromium) return t.fail(`${CHROMIUM} is missing on CI: .ci/run installs Debian's chromium`);
  const { a, b } = await getRuns();
  const file = path.join(tempDir('compare-html'), 'sub', 'compare.html');
  const r = await runCli(['compare', a, b, '--html', file, '--json']);
  t.true(r.code === 0 || r.code === 1, r.err);
  const json = JSON.parse(r.out) as { scenarios: { scenario: string; verdict: string; trialsNeeded?: number }[] };
  const { page, problems } = await open(file);
  t.deepEqual(problems, []);
  const canvases = await drawnCanvases(page);
  t.deepEqual(canvases.map((c) => c.chart).sort(), ['diff', 'rates']);
  for (const c of canvases) t.true(c.width > 0 && c.height > 0 && c.inked, JSON.stringify(c));
  const shown = await page.$$eval('#comparison tr', (rows) => rows.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  t.deepEqual(
    shown.map((row) => [row[0], row[1], row[10]]),
    json.scenarios.map((s) => [s.scenario, s.verdict, s.trialsNeeded === undefined ? '-' : String(s.trialsNeeded)]),
  );
  t.true(shown.some((row) => row[1] === 'REGRESSION'), 'the regression profile shows as a regression');
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'compare.png'), fullPage: true });
  await page.close();
});

test.serial('dexhil report <run-dir> rebuilds report.html and junit.xml byte for byte from the CSVs; a folder that is not a run is refused', async (t) => {
  const { a } = await getRuns();
  const before = { html: readFileSync(path.join(a, 'report.html'), 'utf8'), xml: readFileSync(path.join(a, 'junit.xml'), 'utf8') };
  rmSync(path.join(a, 'report.html'));
  rmSync(path.join(a, 'junit.xml'));
  const r = await runCli(['report', a]);
  t.is(r.code, 0, r.err);
  t.is(readFileSync(path.join(a, 'report.html'), 'utf8'), before.html);
  t.is(readFileSync(path.join(a, 'junit.xml'), 'utf8'), before.xml);
  const empty = tempDir('not-a-run');
  const bad = await runCli(['report', empty]);
  t.is(bad.code, 2);
  t.regex(bad.err, /has no trials\.csv/);
  t.is((await runCli(['report', path.join(empty, 'missing')])).code, 2);
});
