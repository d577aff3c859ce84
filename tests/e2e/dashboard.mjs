// Drive jobql's /dashboard in Debian's Chromium: apply filters, read every view (the job charts
// from their Chart.js instances), open a drill-down (which shows its job in the charts), optionally
// pick another job and window for the charts, and optionally tick Live and write a run of the
// charts' job from outside the page, reach jobs beyond the picker's first page ("More jobs", and
// a search by name); save the screenshot, then turn to the next page of instances (when there is
// one).
//
// usage: node dashboard.mjs <baseUrl> <screenshot.png> <plan-json>
//
// plan-json: {"workspace": "ws1", "token": "" (optional), "statuses": ["SUCCESS", ...],
//             "planTimeAfter": "YYYY-MM-DDTHH:MM", "planTimeBefore": "YYYY-MM-DDTHH:MM",
//             "expectError": false (optional: the views must fail, e.g. without a token),
//             "statsJob": "name", "statsDays": 7 (optional: picked in the charts' selects),
//             "liveWrite": {InstanceInput} (optional: recorded with Live ticked; the charts must
//                           then count `liveCount` runs),
//             "farJobs": {"paged": "name", "search": "prefix", "searched": "name",
//                         "hiding": "prefix", "liveWrite": {InstanceInput}, "liveCount": n}
//                        (optional, after liveWrite: "More jobs" until `paged` is listed, pick it;
//                        search `search`, pick `searched`; search `hiding` (a list without the
//                        charts' job), then record `liveWrite` of it: the charts count liveCount)}
//
// Fails if the page asks any other origin for anything. Records every /graphql request the page
// sends (operation, variables, headers). Prints one JSON object on stdout: the rows of the
// instances table, the per-status counts, the timeline's bars, the job charts' labels and
// datasets (and where each value is drawn), the drill-down's node names and slowest nodes, the
// second page's rows and the requests of each step, for test_dashboard.py to compare with the
// API's own answers. Diagnostics go to stderr; any failure exits non-zero. The browser is never
// downloaded: playwright-core drives $CHROMIUM.
import { chromium } from 'playwright-core';

import { Failure, logger, runScript } from './script.mjs';

const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 150_000;
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VIEWS = ['#counts', '#instances', '#timeline', '#jobStats'];
const RECORD = `mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { message } } }
}`;

const log = logger('dashboard.mjs');


function parseArgs(argv) {
  if (argv.length !== 3) {
    throw new Failure('usage: node dashboard.mjs <baseUrl> <screenshot.png> <plan-json>');
  }
  let base;
  let plan;
  try {
    base = new URL(argv[0]);
  } catch {
    throw new Failure(`not a URL: ${argv[0]}`);
  }
  try {
    plan = JSON.parse(argv[2]);
  } catch (error) {
    throw new Failure(`the plan is not JSON: ${error.message}`);
  }
  return { base, screenshot: argv[1], plan };
}

function isForeign(url, origin) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return true;
  }
  if (['data:', 'blob:', 'about:'].includes(parsed.protocol)) return false;
  return parsed.origin !== origin;
}

/** Wait until every view has drawn (or failed) the page's current generation. */
async function waitForViews(page, views = VIEWS) {
  try {
    await page.waitForFunction(
      (selectors) => {
        const generation = document.querySelector('#views')?.dataset.generation;
        return (
          generation !== '0' &&
          selectors.every((sel) => document.querySelector(sel)?.dataset.generation === generation)
        );
      },
      views,
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const error = await page.locator('#error').textContent().catch(() => null);
    throw new Failure(`the views never finished loading; the error box holds ${JSON.stringify(error)}`);
  }
}

async function applyFilters(page, plan) {
  await page.fill('#workspace', plan.workspace ?? '');
  await page.fill('#token', plan.token ?? '');
  for (const box of await page.locator('input[name="status"]').all()) {
    const value = await box.getAttribute('value');
    await box.setChecked((plan.statuses ?? []).includes(value));
  }
  await page.fill('#planTimeAfter', plan.planTimeAfter ?? '');
  await page.fill('#planTimeBefore', plan.planTimeBefore ?? '');
  const before = await page.locator('#views').getAttribute('data-generation');
  await page.click('#apply');
  await page.waitForFunction(
    (previous) => document.querySelector('#views').dataset.generation !== previous,
    before,
    { timeout: STEP_TIMEOUT_MS },
  );
  await waitForViews(page);
  log('filters applied, every view drawn');
}

/** The job charts as drawn: each Chart.js instance's labels and datasets, read from the page. */
async function readJobStats(page) {
  return page.evaluate(() => {
    const section = document.querySelector('#jobStats');
    const chartOf = (id) => {
      const canvas = document.getElementById(id);
      const chart = window.Chart?.getChart(canvas);
      if (!chart) return null;
      const y = chart.scales.y;
      return {
        type: chart.config.type,
        labels: [...chart.data.labels],
        datasets: chart.data.datasets.map((dataset, index) => {
          const meta = chart.getDatasetMeta(index);
          return {
            label: dataset.label,
            data: [...dataset.data],
            hidden: !chart.isDatasetVisible(index),
            // Where each value is drawn, read back through the y scale: the picture, not only
            // the data it was given (null: nothing drawn for that day).
            drawn: meta.data.map((element, i) =>
              dataset.data[i] === null ? null : y.getValueForPixel(element.y),
            ),
          };
        }),
        yRange: [y.min, y.max],
        size: [canvas.width, canvas.height],
      };
    };
    return {
      job: section.dataset.job ?? null,
      days: section.dataset.days ? Number(section.dataset.days) : null,
      planTimeAfter: section.dataset.planTimeAfter ?? null,
      planTimeBefore: section.dataset.planTimeBefore ?? null,
      count: section.dataset.count ? Number(section.dataset.count) : null,
      jobsTotal: section.dataset.jobsTotal ? Number(section.dataset.jobsTotal) : null,
      jobChoices: [...document.querySelectorAll('#statsJob option')].map((option) => option.value),
      windowChoices: [...document.querySelectorAll('#statsWindow option')].map((o) => Number(o.value)),
      summary: section.querySelector('.summary').textContent,
      duration: chartOf('durationChart'),
      failureRate: chartOf('failureChart'),
    };
  });
}

/** Wait until the job charts show `job` over `days` (and, given, `count` runs), drawn and idle. */
async function waitForJobStats(page, { job, days, count }) {
  try {
    await page.waitForFunction(
      ({ job: wantedJob, days: wantedDays, count: wantedCount }) => {
        const section = document.querySelector('#jobStats');
        return (
          !section.classList.contains('loading') &&
          (wantedJob === undefined || section.dataset.job === wantedJob) &&
          (wantedDays === undefined || section.dataset.days === String(wantedDays)) &&
          (wantedCount === undefined || section.dataset.count === String(wantedCount))
        );
      },
      { job, days, count },
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const error = await page.locator('#error').textContent().catch(() => null);
    const shown = await page.locator('#jobStats').evaluate((s) => ({ ...s.dataset }));
    throw new Failure(
      `the job charts never showed ${JSON.stringify({ job, days, count })}; they show ` +
        `${JSON.stringify(shown)}, the error box holds ${JSON.stringify(error)}`,
    );
  }
}

async function readViews(page) {
  return page.evaluate(() => {
    const fieldsOf = (section) =>
      [...document.querySelectorAll(`${section} th[data-field]`)].map((th) => th.dataset.field);
    return {
      error: document.querySelector('#error').hidden ? null : document.querySelector('#error').textContent,
      errorCodes: document.querySelector('#error').dataset.codes ?? '',
      rows: [...document.querySelectorAll('#instances tr.instance')].map((row) => ({
        id: row.dataset.id,
        jobName: row.dataset.jobName,
        instanceId: row.dataset.instanceId,
        cells: [...row.cells].map((cell) => cell.textContent),
      })),
      instancesFields: fieldsOf('#instances'),
      totalCount: document.querySelector('#instances').dataset.totalCount ?? null,
      summary: document.querySelector('#instances .summary').textContent,
      counts: Object.fromEntries(
        [...document.querySelectorAll('#counts li[data-status]')].map((item) => [
          item.dataset.status,
          Number(item.dataset.count),
        ]),
      ),
      countsOrder: [...document.querySelectorAll('#counts li[data-status]')].map(
        (item) => item.dataset.status,
      ),
      countsShown: Object.fromEntries(
        [...document.querySelectorAll('#counts li[data-status]')].map((item) => [
          item.dataset.status,
          item.querySelector('.number').textContent,
        ]),
      ),
      timeline: [...document.querySelectorAll('#timeline g.run')].map((run) => ({
        id: run.dataset.id,
        jobName: run.dataset.jobName,
        instanceId: run.dataset.instanceId,
        width: Number(run.querySelector('rect').getAttribute('width')),
      })),
      timelineFields: (document.querySelector('#timeline svg')?.dataset.fields ?? '').split(' '),
    };
  });
}

async function openDrillDown(page) {
  const row = page.locator('#instances tr.instance').first();
  const id = await row.getAttribute('data-id');
  const job = await row.getAttribute('data-job-name');
  await row.click();
  try {
    await page.waitForFunction(
      (wanted) => {
        const section = document.querySelector('#nodes');
        return section && !section.hidden && section.dataset.opened === wanted;
      },
      id,
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const error = await page.locator('#error').textContent().catch(() => null);
    throw new Failure(`the drill-down of ${id} never opened; the error box holds ${JSON.stringify(error)}`);
  }
  // Opening an instance shows its job in the charts.
  await waitForJobStats(page, { job });
  log(`drill-down of ${id} open, the charts show ${job}`);
  return page.evaluate((opened) => {
    const section = document.querySelector('#nodes');
    return {
      id: opened,
      jobName: section.dataset.jobName,
      instanceId: section.dataset.instanceId,
      names: [...section.querySelectorAll('tr.node td.name')].map((cell) => cell.textContent),
      fields: [...section.querySelectorAll('table.nodes th[data-field]')].map((th) => th.dataset.field),
      slowest: [...section.querySelectorAll('table.slowest tr.slow-node')].map((row) => ({
        name: row.dataset.name,
        runs: Number(row.dataset.runs),
        failures: Number(row.dataset.failures),
        p50: JSON.parse(row.dataset.p50),
        p95: JSON.parse(row.dataset.p95),
        cells: [...row.cells].map((cell) => cell.textContent),
      })),
      slowestFields: [...section.querySelectorAll('table.slowest th[data-field]')].map(
        (th) => th.dataset.field,
      ),
      summary: section.querySelector('.summary').textContent,
    };
  }, id);
}

/** Pick a job and/or a window in the charts' selects, as a person would. */
async function pickJobStats(page, { statsJob, statsDays }) {
  if (statsJob !== undefined) {
    await page.selectOption('#statsJob', statsJob);
    await waitForJobStats(page, { job: statsJob });
  }
  if (statsDays !== undefined) {
    await page.selectOption('#statsWindow', String(statsDays));
    await waitForJobStats(page, { job: statsJob, days: statsDays });
  }
  log(`the charts show ${statsJob ?? 'the same job'} over ${statsDays ?? 'the same'} days`);
}

async function record(base, workspace, items) {
  const response = await fetch(new URL('/graphql', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', workspace },
    body: JSON.stringify({ query: RECORD, variables: { input: items } }),
  });
  const body = await response.json();
  if (body.errors) throw new Failure(`the write failed: ${JSON.stringify(body.errors)}`);
  const errors = body.data.recordInstances.results.flatMap((result) => result.userErrors ?? []);
  if (errors.length > 0) throw new Failure(`the write was refused: ${JSON.stringify(errors)}`);
}

/** Tick Live, write a run from outside the page, and wait for the charts to count it. */
async function writeWhileLive(page, base, plan) {
  await page.check('#live');
  try {
    await page.waitForFunction(() => document.querySelector('#liveStatus').dataset.status === 'live', null, {
      timeout: STEP_TIMEOUT_MS,
      polling: 100,
    });
  } catch {
    throw new Failure(`Live never connected: ${await page.locator('#liveStatus').textContent()}`);
  }
  await record(base, plan.workspace, [plan.liveWrite]);
  await waitForJobStats(page, { job: plan.liveWrite.jobName, count: plan.liveCount });
  log('the charts followed a write made elsewhere');
}

/** The picker's list as shown, and how far it goes. */
async function readJobPicker(page) {
  return page.evaluate(() => {
    const section = document.querySelector('#jobStats');
    return {
      choices: [...document.querySelectorAll('#statsJob option')].map((option) => option.value),
      listed: Number(section.dataset.jobsListed),
      total: Number(section.dataset.jobsTotal),
      search: section.dataset.jobsSearch,
      shown: document.querySelector('#jobsShown').textContent,
      more: !document.querySelector('#moreJobs').hidden,
    };
  });
}

async function waitForPicker(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: STEP_TIMEOUT_MS, polling: 100 });
  } catch {
    const error = await page.locator('#error').textContent().catch(() => null);
    const { choices, ...picker } = await readJobPicker(page);
    throw new Failure(
      `the job picker never showed ${what}; it shows ${JSON.stringify(picker)} ` +
        `(${choices.length} choices), the error box holds ${JSON.stringify(error)}`,
    );
  }
}

/**
 * Reach jobs beyond the picker's first page: "More jobs" until `paged` is listed, then pick it;
 * search `search` and pick `searched`; search `hiding`, a list without the charts' job, and write
 * a run of that job from outside the page (Live is ticked). Returns what each step showed and
 * asked.
 */
async function reachFarJobs(page, base, plan, requests) {
  const far = plan.farJobs;
  const steps = {};
  let before = requests.length;
  const pages = [];
  while (!(await readJobPicker(page)).choices.includes(far.paged)) {
    const picker = await readJobPicker(page);
    if (!picker.more) throw new Failure(`${far.paged} is not listed and there is no "More jobs"`);
    await page.click('#moreJobs');
    const listedMore = (listed) =>
      Number(document.querySelector('#jobStats').dataset.jobsListed) > listed;
    await waitForPicker(page, 'more jobs', listedMore, picker.listed);
    pages.push(await readJobPicker(page));
  }
  steps.more = { pages, requests: requests.slice(before) };
  before = requests.length;
  await page.selectOption('#statsJob', far.paged);
  await waitForJobStats(page, { job: far.paged });
  steps.paged = { charts: await readJobStats(page), requests: requests.slice(before) };
  log(`"More jobs" reached ${far.paged}`);

  const searched = (search) => document.querySelector('#jobStats').dataset.jobsSearch === search;
  before = requests.length;
  await page.fill('#jobSearch', far.search);
  await waitForPicker(page, `the jobs named ${far.search}…`, searched, far.search);
  steps.search = { picker: await readJobPicker(page), requests: requests.slice(before) };
  before = requests.length;
  await page.selectOption('#statsJob', far.searched);
  await waitForJobStats(page, { job: far.searched });
  steps.searched = { charts: await readJobStats(page), requests: requests.slice(before) };
  log(`the search for ${far.search} reached ${far.searched}`);

  before = requests.length;
  await page.fill('#jobSearch', far.hiding);
  await waitForPicker(page, `the jobs named ${far.hiding}…`, searched, far.hiding);
  steps.hiding = { picker: await readJobPicker(page), requests: requests.slice(before) };
  before = requests.length;
  await record(base, plan.workspace, [far.liveWrite]);
  await waitForJobStats(page, { job: far.searched, count: far.liveCount });
  steps.live = {
    charts: await readJobStats(page),
    picker: await readJobPicker(page),
    requests: requests.slice(before),
  };
  log(`the charts of ${far.searched}, not listed, followed a write made elsewhere`);
  return steps;
}

async function turnPage(page) {
  await page.click('#nextPage');
  try {
    await page.waitForFunction(() => document.querySelector('#instances').dataset.page === '2', null, {
      timeout: STEP_TIMEOUT_MS,
      polling: 100,
    });
  } catch {
    const error = await page.locator('#error').textContent().catch(() => null);
    throw new Failure(`page 2 never loaded; the error box holds ${JSON.stringify(error)}`);
  }
  log('turned to page 2');
  return page.evaluate(() => ({
    rows: [...document.querySelectorAll('#instances tr.instance')].map((row) => row.dataset.id),
    summary: document.querySelector('#instances .summary').textContent,
  }));
}

async function main() {
  const { base, screenshot, plan } = parseArgs(process.argv.slice(2));
  const origin = base.origin;
  const pageUrl = new URL('dashboard', base.href.endsWith('/') ? base.href : `${base.href}/`).href;
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

  log(`launching ${executablePath}`);
  const browser = await chromium.launch({ executablePath, args: LAUNCH_ARGS, timeout: 60_000 });
  const foreign = [];
  const pageErrors = [];
  const requests = [];
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    await context.route('**/*', (route) => {
      const request = route.request();
      const url = request.url();
      if (isForeign(url, origin)) {
        foreign.push(`${request.method()} ${url}`);
        return route.abort('blockedbyclient');
      }
      if (new URL(url).pathname === '/graphql' && request.method() === 'POST') {
        let body = null;
        try {
          body = JSON.parse(request.postData() ?? 'null');
        } catch {
          body = { unparsable: request.postData() };
        }
        const headers = request.headers();
        requests.push({
          query: body?.query ?? null,
          variables: body?.variables ?? null,
          workspace: headers.workspace ?? null,
          authorization: headers.authorization ?? null,
        });
      }
      return route.continue();
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (msg) => {
      // A refused request (401, 403) logs "Failed to load resource"; the views report it in the
      // error box, which the plan's expectError checks. Anything else is a bug in the page.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        pageErrors.push(`console: ${msg.text()}`);
      }
    });

    log(`opening ${pageUrl}`);
    const response = await page.goto(pageUrl, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
    if (!response || !response.ok()) {
      throw new Failure(`GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`);
    }
    // The page loads its unfiltered views for the saved (or default) workspace on its own.
    await waitForViews(page);
    const initialRequests = requests.length;

    await applyFilters(page, plan);
    const applied = requests.slice(initialRequests);
    const views = await readViews(page);
    const jobStats = { applied: await readJobStats(page) };
    let drillDown = null;
    let drillDownRequests = [];
    let pickRequests = [];
    let liveRequests = [];
    let farJobs = null;
    let secondPage = null;
    let pageRequests = [];
    if (plan.expectError) {
      if (!views.error) throw new Failure('the views loaded although the plan expected an error');
    } else {
      if (views.error) throw new Failure(`the views failed: ${views.error}`);
      if (views.rows.length === 0) throw new Failure('the filters left no rows to drill into');
      const before = requests.length;
      drillDown = await openDrillDown(page);
      drillDownRequests = requests.slice(before);
      jobStats.drillDown = await readJobStats(page);
      if (plan.statsJob !== undefined || plan.statsDays !== undefined) {
        const beforePick = requests.length;
        await pickJobStats(page, plan);
        pickRequests = requests.slice(beforePick);
        jobStats.picked = await readJobStats(page);
      }
      if (plan.liveWrite) {
        const beforeWrite = requests.length;
        await writeWhileLive(page, base, plan);
        liveRequests = requests.slice(beforeWrite);
        jobStats.live = await readJobStats(page);
      }
      if (plan.farJobs) farJobs = await reachFarJobs(page, base, plan, requests);
      // The artifact shows the filtered first page with its drill-down open.
      await page.screenshot({ path: screenshot, fullPage: true });
      log(`screenshot saved to ${screenshot}`);
      if (await page.locator('#nextPage').isEnabled()) {
        const beforePaging = requests.length;
        secondPage = await turnPage(page);
        pageRequests = requests.slice(beforePaging);
      }
    }

    if (foreign.length > 0) {
      throw new Failure(
        `the page requested ${foreign.length} cross-origin URL(s):\n  ${foreign.join('\n  ')}`,
      );
    }
    if (pageErrors.length > 0 && !plan.expectError) {
      throw new Failure(`errors in the page:\n  ${pageErrors.join('\n  ')}`);
    }
    if (plan.expectError) {
      await page.screenshot({ path: screenshot, fullPage: true });
      log(`screenshot saved to ${screenshot}`);
    }
    process.stdout.write(
      `${JSON.stringify({
        url: page.url(),
        views,
        jobStats,
        drillDown,
        applied,
        drillDownRequests,
        pickRequests,
        liveRequests,
        farJobs,
        secondPage,
        pageRequests,
      })}\n`,
    );
  } catch (error) {
    if (page) {
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      log(`screenshot of the failure saved to ${screenshot}`);
    }
    if (pageErrors.length > 0) log(`errors in the page:\n  ${pageErrors.join('\n  ')}`);
    if (foreign.length > 0) log(`cross-origin requests seen:\n  ${foreign.join('\n  ')}`);
    throw error;
  } finally {
    await browser.close();
  }
}

await runScript(main, { timeoutMs: OVERALL_TIMEOUT_MS, log });
