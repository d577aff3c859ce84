// Drive jobql's GraphiQL page in Debian's Chromium and prove it works offline.
//
// usage: node graphiql.mjs <baseUrl> <screenshot.png>
//
// Opens <baseUrl>/graphql, fails if the page asks any other origin for anything, replaces the query,
// runs it and waits for real data in the result pane. Then empties the editor, opens the Explorer
// plugin, builds a query by clicking fields (instances -> nodes -> status), runs it and waits for
// its data. Prints {"result": "<pane text>", "explorerQuery": "<editor text>", "explorerResult":
// "<pane text>"} on stdout and saves a screenshot (of the Explorer step). Diagnostics go to stderr;
// any failure exits non-zero.
// The browser is never downloaded: playwright-core drives the system binary ($CHROMIUM).
import { chromium } from 'playwright-core';

import { Failure, logger, runScript } from './script.mjs';

const QUERY = '{ instances(first: 3) { nodes { jobName instanceId status } } }';
const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 120_000;
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

// GraphiQL 3.x renders its editors with CodeMirror 5; each wrapper element carries the editor
// instance as `.CodeMirror`.
const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
// The Explorer (graphiql-explorer inside @graphiql/plugin-explorer) renders each field as an element
// with `data-field-name`, and wraps a selected object field and its children in a div with the class
// `graphiql-explorer-<field>`, which scopes the next click to that field's children.
const EXPLORER_ROOT = '.graphiql-explorer-root';
const EXPLORER_PATH = ['instances', 'nodes', 'status'];
const RESULT_EDITOR = '.graphiql-response .CodeMirror';

const log = logger('graphiql.mjs');


function parseArgs(argv) {
  if (argv.length !== 2) {
    throw new Failure('usage: node graphiql.mjs <baseUrl> <screenshot.png>');
  }
  let base;
  try {
    base = new URL(argv[0]);
  } catch {
    throw new Failure(`not a URL: ${argv[0]}`);
  }
  return { base, screenshot: argv[1] };
}

// Non-network schemes never leave the browser; everything else must come from the page's origin.
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

async function editorValue(page, selector) {
  return page.evaluate((sel) => {
    const el = document.querySelector(sel);
    return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
  }, selector);
}

const normalise = (text) => (text ?? '').replace(/\s+/g, ' ').trim();

async function setQuery(page) {
  const editor = page.locator(QUERY_EDITOR).first();
  await editor.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  // Type as a user would: focus, select all, replace. insertText sends one input event rather than
  // key presses, so the editor's bracket auto-closing cannot double the braces.
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(QUERY);
  await page.keyboard.press('Control+Home'); // scroll back so the screenshot shows the whole query
  let value = await editorValue(page, QUERY_EDITOR);
  if (normalise(value) !== normalise(QUERY)) {
    log(`keyboard edit left ${JSON.stringify(value)}; falling back to the CodeMirror API`);
    await page.evaluate(
      ({ sel, text }) => document.querySelector(sel).CodeMirror.setValue(text),
      { sel: QUERY_EDITOR, text: QUERY },
    );
    value = await editorValue(page, QUERY_EDITOR);
  }
  if (normalise(value) !== normalise(QUERY)) {
    throw new Failure(`could not set the query; the editor holds ${JSON.stringify(value)}`);
  }
  log('query editor set');
}

async function runQuery(page) {
  // The accessible name ("Execute query (Ctrl-Enter)") first, the class name as a fallback.
  const byRole = page.getByRole('button', { name: /execute query/i });
  const button =
    (await byRole.count()) > 0 ? byRole.first() : page.locator('.graphiql-execute-button').first();
  await button.click({ timeout: STEP_TIMEOUT_MS });
  log('clicked the execute button');
}

async function waitForResult(page) {
  try {
    await page.waitForFunction(
      (sel) => {
        const el = document.querySelector(sel);
        const text = el && el.CodeMirror ? el.CodeMirror.getValue() : '';
        // Stop waiting as soon as either data or an error arrives; the check below tells them apart.
        return (
          (text.includes('"instances"') && text.includes('"jobName"')) ||
          text.includes('"errors"') ||
          /"nodes":\s*\[\s*\]/.test(text)
        );
      },
      RESULT_EDITOR,
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const seen = await editorValue(page, RESULT_EDITOR).catch(() => null);
    throw new Failure(
      `the result pane never showed "instances" and "jobName"; it holds ${JSON.stringify(seen)}`,
    );
  }
  const text = await editorValue(page, RESULT_EDITOR);
  if (!(text.includes('"instances"') && text.includes('"jobName"'))) {
    const why = text.includes('"errors"') ? 'the query failed' : 'the query found no instances';
    throw new Failure(`${why}; the result pane holds ${text}`);
  }
  return text;
}

async function clearQuery(page) {
  const editor = page.locator(QUERY_EDITOR).first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  const value = await editorValue(page, QUERY_EDITOR);
  if (normalise(value) !== '') {
    throw new Failure(`could not empty the query editor; it holds ${JSON.stringify(value)}`);
  }
}

async function openExplorer(page) {
  // The sidebar button's accessible name is "Show <plugin title>" ("Show GraphiQL Explorer").
  await page
    .getByRole('button', { name: /show graphiql explorer/i })
    .click({ timeout: STEP_TIMEOUT_MS });
  await page
    .locator(`${EXPLORER_ROOT} [data-field-name="${EXPLORER_PATH[0]}"]`)
    .first()
    .waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  log('Explorer open, root fields listed');
}

async function buildQueryInExplorer(page) {
  let scope = EXPLORER_ROOT;
  for (const field of EXPLORER_PATH) {
    const target = page.locator(`${scope} [data-field-name="${field}"]`).first();
    await target.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
    await target.click();
    log(`clicked ${field} in the Explorer`);
    scope = `${scope} .graphiql-explorer-${field}`;
  }
  // The Explorer writes into the query editor; wait until the whole path is there.
  try {
    await page.waitForFunction(
      ({ sel, path }) => {
        const el = document.querySelector(sel);
        const text = el && el.CodeMirror ? el.CodeMirror.getValue() : '';
        let at = 0;
        for (const name of path) {
          const found = text.indexOf(name, at);
          if (found < 0) return false;
          at = found + name.length;
        }
        return true;
      },
      { sel: QUERY_EDITOR, path: EXPLORER_PATH },
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const seen = await editorValue(page, QUERY_EDITOR).catch(() => null);
    throw new Failure(
      `clicking ${EXPLORER_PATH.join(' -> ')} in the Explorer left the editor holding ` +
        JSON.stringify(seen),
    );
  }
  const query = await editorValue(page, QUERY_EDITOR);
  log(`Explorer built: ${normalise(query)}`);
  return query;
}

async function waitForExplorerResult(page, previous) {
  try {
    await page.waitForFunction(
      ({ sel, before }) => {
        const el = document.querySelector(sel);
        const text = el && el.CodeMirror ? el.CodeMirror.getValue() : '';
        return text !== before && (text.includes('"status"') || text.includes('"errors"'));
      },
      { sel: RESULT_EDITOR, before: previous },
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    const seen = await editorValue(page, RESULT_EDITOR).catch(() => null);
    throw new Failure(`the Explorer's query never answered; the result pane holds ${seen}`);
  }
  const text = await editorValue(page, RESULT_EDITOR);
  if (text.includes('"errors"')) {
    throw new Failure(`the Explorer's query failed; the result pane holds ${text}`);
  }
  return text;
}

async function main() {
  const { base, screenshot } = parseArgs(process.argv.slice(2));
  const origin = base.origin;
  const pageUrl = new URL('graphql', base.href.endsWith('/') ? base.href : `${base.href}/`).href;
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

  log(`launching ${executablePath}`);
  const browser = await chromium.launch({ executablePath, args: LAUNCH_ARGS, timeout: 60_000 });
  const foreign = [];
  const pageErrors = [];
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Record, then refuse, every request to another origin: the page must not need the internet,
    // and the test must not depend on whether this machine has it.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isForeign(url, origin)) {
        foreign.push(`${route.request().method()} ${url}`);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
    });

    log(`opening ${pageUrl}`);
    const response = await page.goto(pageUrl, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
    if (!response || !response.ok()) {
      throw new Failure(`GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`);
    }
    const contentType = response.headers()['content-type'] ?? '';
    if (!contentType.startsWith('text/html')) {
      throw new Failure(`GET ${pageUrl} answered content-type ${JSON.stringify(contentType)}, not HTML`);
    }

    await setQuery(page);
    await runQuery(page);
    const result = await waitForResult(page);
    log('result pane shows data');

    await clearQuery(page);
    await openExplorer(page);
    const explorerQuery = await buildQueryInExplorer(page);
    await runQuery(page);
    const explorerResult = await waitForExplorerResult(page, result);
    log('result pane shows the data of the query built in the Explorer');

    if (foreign.length > 0) {
      throw new Failure(
        `the page requested ${foreign.length} cross-origin URL(s):\n  ${foreign.join('\n  ')}`,
      );
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    log(`screenshot saved to ${screenshot}`);
    process.stdout.write(`${JSON.stringify({ result, explorerQuery, explorerResult })}\n`);
  } catch (error) {
    if (page) {
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      log(`screenshot of the failure saved to ${screenshot}`);
    }
    if (pageErrors.length > 0) log(`errors in the page:\n  ${pageErrors.join('\n  ')}`);
    if (foreign.length > 0 && !(error instanceof Failure && /cross-origin/.test(error.message))) {
      log(`cross-origin requests seen:\n  ${foreign.join('\n  ')}`);
    }
    throw error;
  } finally {
    await browser.close();
  }
}

await runScript(main, { timeoutMs: OVERALL_TIMEOUT_MS, log });
