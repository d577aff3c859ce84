// Drive jobql's /dashboard in Debian's Chromium with "Live" ticked: writes made elsewhere (POSTed
// by this script, not by the page) show up in the counts, the list and the open drill-down
// without a reload, and after a network drop the page reconnects with its last cursor. Last, node
// runs written to the open instance change which node is slowest: the drill-down's slowest nodes
// follow (test_dashboard_live.py compares them with a fresh `nodeStats`).
//
// usage: node dashboard_live.mjs <baseUrl> <screenshot.png> <plan-json>
// plan-json: {"workspace": "default", "job": "live_dashboard", "instanceId": 424242}
//
// Prints one JSON object on stdout (what each step saw); any failure exits non-zero.
import { chromium } from 'playwright-core';

import { Failure, logger, runScript } from './script.mjs';

const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 150_000;
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
const RECORD = `mutation Record($input: [InstanceInput!]!) {
  recordInstances(input: $input) { results { outcome userErrors { message } } }
}`;

const log = logger('dashboard_live.mjs');

async function record(base, workspace, items) {
  const response = await fetch(new URL('/graphql', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', workspace },
    body: JSON.stringify({ query: RECORD, variables: { input: items } }),
  });
  const body = await response.json();
  if (body.errors) throw new Failure(`the write failed: ${JSON.stringify(body.errors)}`);
  return body.data.recordInstances.results.map((result) => result.outcome);
}

// Nodes are [name, status] or [name, status, seconds from start to end].
const NODE_START = Date.parse('2099-01-01T00:01:00Z');

function item(plan, instanceId, status, nodes) {
  return {
    jobName: plan.job,
    instanceId,
    status,
    // Planned in the future: first in the list (newest planned first).
    planTime: '2099-01-01T00:00:00Z',
    nodes: nodes.map(([name, nodeStatus, seconds]) => {
      const node = { name, type: 'SQL', status: nodeStatus };
      if (seconds !== undefined) {
        node.startTime = new Date(NODE_START).toISOString();
        node.endTime = new Date(NODE_START + seconds * 1000).toISOString();
      }
      return node;
    }),
  };
}

async function until(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: STEP_TIMEOUT_MS, polling: 100 });
  } catch {
    const status = await page.locator('#liveStatus').textContent();
    throw new Failure(`timed out waiting for ${what} (live status: ${status})`);
  }
}

const failCount = () => Number(document.querySelector('#counts li[data-status="FAIL"]').dataset.count);
const firstRow = () => document.querySelector('#instances tr.instance')?.dataset.instanceId;
// The drill-down's slowest nodes as shown: [name, runs, failures, p50, p95] per row.
const slowestRows = () =>
  [...document.querySelectorAll('#nodes table.slowest tr.slow-node')].map((row) => [
    row.dataset.name,
    Number(row.dataset.runs),
    Number(row.dataset.failures),
    JSON.parse(row.dataset.p50),
    JSON.parse(row.dataset.p95),
  ]);
const slowestShows = ([name, p95]) => {
  const row = document.querySelector('#nodes table.slowest tr.slow-node');
  return row?.dataset.name === name && JSON.parse(row.dataset.p95) === p95;
};

async function main() {
  const [baseArg, screenshot, planArg] = process.argv.slice(2);
  if (!planArg) throw new Failure('usage: node dashboard_live.mjs <baseUrl> <screenshot.png> <plan-json>');
  const base = new URL(baseArg);
  const plan = JSON.parse(planArg);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: LAUNCH_ARGS });
  const seen = { subscribes: [], steps: {}, slowestReads: [] };
  try {
    const page = await browser.newPage();
    page.on('request', (request) => {
      const body = request.method() === 'POST' ? request.postDataJSON() : null;
      if (body?.query?.includes('DashboardSlowestNodes')) seen.slowestReads.push(body);
    });
    page.on('websocket', (socket) => {
      socket.on('framesent', (frame) => {
        const message = JSON.parse(frame.payload);
        if (message.type === 'subscribe') seen.subscribes.push(message.payload);
      });
    });
    await page.goto(new URL('/dashboard/', base).href);
    await page.evaluate(() => {
      window.loadedOnce = true; // gone if the page reloads
    });
    await until(page, 'the views', () => document.querySelector('#counts').dataset.generation === '1');
    const failsBefore = await page.evaluate(failCount);

    await page.check('#live');
    await until(page, 'live', () => document.querySelector('#liveStatus').dataset.status === 'live');
    log('live');

    // 1. A new failed run: the counts and the list update by themselves.
    await record(base, plan.workspace, [item(plan, plan.instanceId, 'FAIL', [['extract', 'FAIL']])]);
    await until(page, 'the FAIL count', (n) => Number(document.querySelector('#counts li[data-status="FAIL"]').dataset.count) === n, failsBefore + 1);
    await until(page, 'the new row', (id) => document.querySelector('#instances tr.instance')?.dataset.instanceId === String(id), plan.instanceId);
    seen.steps.created = { fails: await page.evaluate(failCount), firstRow: await page.evaluate(firstRow) };
    log('the counts and the list followed a write');

    // 2. Open it; a change of its nodes reaches the open drill-down.
    await page.click(`#instances tr.instance[data-instance-id="${plan.instanceId}"]`);
    await until(page, 'the drill-down', () => document.querySelectorAll('#nodes table.nodes tbody tr').length === 1);
    await record(base, plan.workspace, [
      item(plan, plan.instanceId, 'FAIL', [['extract', 'SUCCESS'], ['load', 'FAIL']]),
    ]);
    await until(page, 'the pushed nodes', () => document.querySelectorAll('#nodes table.nodes tbody tr').length === 2);
    seen.steps.drillDown = await page.evaluate(() =>
      [...document.querySelectorAll('#nodes table.nodes tbody tr')].map((row) => [...row.cells].map((c) => c.textContent)),
    );
    log('the drill-down followed a write');

    // 3. A network drop; a write while it is down; the page comes back with its last cursor.
    await page.evaluate(() => window.jobqlLive.drop());
    await until(page, 'reconnecting', () => document.querySelector('#liveStatus').dataset.status !== 'live');
    await record(base, plan.workspace, [item(plan, plan.instanceId + 1, 'FAIL', [['extract', 'FAIL']])]);
    await until(page, 'live again', () => document.querySelector('#liveStatus').dataset.status === 'live');
    await until(page, 'the FAIL count after the drop', (n) => Number(document.querySelector('#counts li[data-status="FAIL"]').dataset.count) === n, failsBefore + 2);
    seen.steps.afterDrop = { fails: await page.evaluate(failCount), firstRow: await page.evaluate(firstRow) };
    log('the page came back after a drop');

    // 4. Node runs of the open instance, written elsewhere: first `load` is the slowest; then, in
    // a burst of two writes, `extract` passes it. The slowest nodes follow, without a reload.
    const readsBefore = seen.slowestReads.length;
    const pushesBefore = Number(await page.locator('#nodes').getAttribute('data-pushes'));
    await record(base, plan.workspace, [
      item(plan, plan.instanceId, 'FAIL', [['extract', 'SUCCESS', 10], ['load', 'FAIL', 50]]),
    ]);
    await until(page, 'load as the slowest node', slowestShows, ['load', 50_000]);
    seen.steps.loadSlowest = await page.evaluate(slowestRows);
    for (const seconds of [80, 120]) {
      const nodes = [['extract', 'SUCCESS', seconds], ['load', 'FAIL', 50]];
      await record(base, plan.workspace, [item(plan, plan.instanceId, 'FAIL', nodes)]);
    }
    await until(page, 'extract as the slowest node', slowestShows, ['extract', 120_000]);
    seen.steps.extractSlowest = await page.evaluate(slowestRows);
    seen.steps.slowest = {
      reads: seen.slowestReads.length - readsBefore,
      pushes: Number(await page.locator('#nodes').getAttribute('data-pushes')) - pushesBefore,
      drillDownId: await page.locator('#nodes').getAttribute('data-opened'),
    };
    log('the slowest nodes followed writes of node runs');

    seen.reloaded = !(await page.evaluate(() => window.loadedOnce === true));
    seen.refreshes = Number(await page.locator('#views').getAttribute('data-refreshes'));
    await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

runScript(main, { timeoutMs: OVERALL_TIMEOUT_MS, log });
