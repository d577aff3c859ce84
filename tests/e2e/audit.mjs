// Run graphql-http's GraphQL-over-HTTP conformance audit against a server and summarise it as JSON.
//
// usage: node audit.mjs <url>        (the GraphQL endpoint, e.g. http://127.0.0.1:8000/graphql)
//
// Prints {"ok", "notice", "warn", "error", "errors", "warnings", "notices"} on stdout and exits 0
// whenever the audit ran: the Python test decides which numbers are acceptable. Exits non-zero only
// when the audit itself could not run (bad arguments, a fatal audit error).
import { auditServer } from 'graphql-http';

const BODY_LIMIT = 2_000;

function log(message) {
  process.stderr.write(`audit.mjs: ${message}\n`);
}

// What the server answered for a failing audit: enough to see why without rerunning it.
async function describeResponse(response) {
  if (!response) return null;
  let body = null;
  try {
    body = await response.clone().text();
  } catch {
    // The audit already consumed a body it could not clone; the status and headers still help.
  }
  if (body !== null && body.length > BODY_LIMIT) body = `${body.slice(0, BODY_LIMIT)}…`;
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body,
  };
}

async function summarise(result) {
  return {
    id: result.id,
    name: result.name,
    reason: result.reason,
    response: await describeResponse(result.response),
  };
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1) {
    log('usage: node audit.mjs <url>');
    return 2;
  }
  const [url] = args;
  try {
    new URL(url);
  } catch {
    log(`not a URL: ${url}`);
    return 2;
  }

  log(`auditing ${url}`);
  const results = await auditServer({ url });
  const summary = { ok: 0, notice: 0, warn: 0, error: 0, errors: [], warnings: [], notices: [] };
  const lists = { error: summary.errors, warn: summary.warnings, notice: summary.notices };
  for (const result of results) {
    summary[result.status] = (summary[result.status] ?? 0) + 1;
    if (result.status !== 'ok') lists[result.status]?.push(await summarise(result));
  }
  log(
    `${results.length} audits: ${summary.ok} ok, ${summary.notice} notice, ` +
      `${summary.warn} warn, ${summary.error} error`,
  );
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  log(`FAILED: the audit could not run: ${error?.stack ?? error}`);
  process.exitCode = 1;
}
