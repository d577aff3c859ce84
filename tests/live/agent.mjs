// A controllable subscriber for tests/live/*.py: graphql-ws (and graphql-sse) clients driven by
// JSON commands, one per line on stdin; everything they see is one JSON line on stdout.
//
//   {"cmd": "connect", "client": "a", "url": "ws://...", "params": {...}}
//   {"cmd": "subscribe", "client": "a", "sub": "a1", "query": "...", "variables": {...}}
//   {"cmd": "pause" | "resume" | "terminate" | "dispose", "client": "a"}
//   {"cmd": "sse", "client": "s", "url": "http://.../graphql/stream", "headers": {...}}
//
// Out: {"ev": "connected" | "closed" | "next" | "error" | "complete", ...}.
import readline from "node:readline";
import { createClient } from "graphql-ws";
import { createClient as createSseClient } from "graphql-sse";
import WebSocket from "ws";

const clients = new Map();
const sockets = new Map();

function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function socketClass(client) {
  // The socket graphql-ws opens for `client`, kept so that a test can pause or cut it.
  return class extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.set(client, this);
    }
  };
}

const commands = {
  connect({ client, url, params }) {
    const ws = createClient({
      url,
      webSocketImpl: socketClass(client),
      connectionParams: params,
      lazy: false,
      retryAttempts: 0,
      keepAlive: 0,
      onNonLazyError: () => {},
      on: {
        connected: () => emit({ ev: "connected", client }),
        closed: (event) => emit({ ev: "closed", client, code: event.code, reason: event.reason }),
      },
    });
    clients.set(client, ws);
  },
  sse({ client, url, headers }) {
    clients.set(client, createSseClient({ url, headers, retryAttempts: 0 }));
  },
  subscribe({ client, sub, query, variables }) {
    clients.get(client).subscribe(
      { query, variables },
      {
        next: (payload) => emit({ ev: "next", client, sub, payload }),
        error: (error) => {
          const errors = Array.isArray(error)
            ? error
            : error && error.code !== undefined
              ? [{ message: "closed", extensions: { closeCode: error.code, reason: error.reason } }]
              : [{ message: String(error && error.message ? error.message : error) }];
          emit({ ev: "error", client, sub, errors });
        },
        complete: () => emit({ ev: "complete", client, sub }),
      },
    );
  },
  pause({ client }) {
    sockets.get(client)._socket.pause();
    emit({ ev: "paused", client });
  },
  resume({ client }) {
    sockets.get(client)._socket.resume();
    emit({ ev: "resumed", client });
  },
  terminate({ client }) {
    sockets.get(client).terminate();
  },
  dispose({ client }) {
    const found = clients.get(client);
    if (found) found.dispose();
    clients.delete(client);
  },
  exit() {
    process.exit(0);
  },
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  try {
    commands[command.cmd](command);
  } catch (error) {
    emit({ ev: "agent-error", command, message: String(error && error.stack ? error.stack : error) });
  }
});
emit({ ev: "ready" });
