// Subscribers for `python -m bench.live`: graphql-ws clients (the protocol's reference client,
// from tests/live/node_modules), one WebSocket per `perConnection` subscriptions.
//
//   node bench/live_client.mjs <ws url> <perConnection>   (stdin: a JSON list of
//   {query, variables}; stdout: "ready" once every subscription is acknowledged, then, after
//   a line "stop" on stdin, one JSON line {errors, closed, latencies: [seconds...]})
//
// Latency: arrival (Date.now()) minus the event's `at` (its commit time, written by the server).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'live', 'package.json'));
const { createClient } = require('graphql-ws');
const WebSocket = require('ws');

const [url, perConnectionText] = process.argv.slice(2);
const perConnection = Number(perConnectionText);
const lines = readline.createInterface({ input: process.stdin });
const input = lines[Symbol.asyncIterator]();
const documents = JSON.parse((await input.next()).value);

const latencies = [];
let errors = 0;
let closed = 0;
const clients = [];
const acknowledged = [];

for (let start = 0; start < documents.length; start += perConnection) {
  let connected;
  acknowledged.push(new Promise((resolve) => { connected = resolve; }));
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    keepAlive: 0,
    on: { connected, closed: () => { closed += 1; } },
  });
  clients.push(client);
  for (const payload of documents.slice(start, start + perConnection)) {
    client.subscribe(payload, {
      next: (message) => {
        const now = Date.now();
        const event = message.data && message.data.instanceEvents;
        if (!event) {
          errors += 1;
          return;
        }
        latencies.push((now - Date.parse(event.at)) / 1000);
      },
      error: () => { errors += 1; },
      complete: () => {},
    });
  }
}
await Promise.all(acknowledged);
// The server acknowledges the connection before it has taken every subscribe message: wait
// until it has (one event round trip would tell; a short pause is enough here).
await new Promise((resolve) => setTimeout(resolve, 500));
process.stdout.write('ready\n');
await input.next(); // "stop"
for (const client of clients) await client.dispose();
// Exit once written: process.exit() would cut a pipe write short.
process.stdout.write(JSON.stringify({ errors, closed, latencies }) + '\n', () => process.exit(0));
