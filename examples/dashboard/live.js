// Live updates: a minimal client of graphql-transport-ws (the protocol of npm `graphql-ws`) on the
// page's own origin, so that the dashboard needs no build step and no package.
//
// Two subscriptions: `DashboardEvents` (only the cursor of each change that matches the filter:
// the views re-read what they show), and `DashboardInstance` for the open drill-down (its nodes,
// pushed again on each change). After a network drop it reconnects, with backoff, and resumes
// the events after the last cursor it saw, so that nothing that happened meanwhile is missed.

export const EVENTS_SUBSCRIPTION = `subscription DashboardEvents($filter: InstanceFilter, $after: String) {
  instanceEvents(filter: $filter, after: $after) { cursor }
}`;

export const INSTANCE_SUBSCRIPTION = `subscription DashboardInstance($id: ID!, $first: Int!) {
  instanceById(id: $id) {
    jobName
    instanceId
    nodes(first: $first) {
      totalCount
      nodes { name type status startTime durationMs retryTimes }
    }
  }
}`;

const PROTOCOL = 'graphql-transport-ws';
// graphql-ws close codes after which trying again cannot help: bad request, no valid token,
// a workspace the token does not cover, subprotocol refused.
const FATAL = new Set([4400, 4401, 4403, 4406]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class LiveConnection {
  /**
   * `connection` is `{ workspace, token }` as for `request`; `handlers` are `onEvent()` (a
   * change matched, or the connection came back: re-read), `onInstance(data)` (the drill-down's
   * instance), `onStatus(status, detail)` with status `connecting`, `live`, `reconnecting`,
   * `refused` or `off`.
   */
  constructor(connection, handlers) {
    this.connection = connection;
    this.handlers = handlers;
    this.filter = {};
    this.cursor = null;
    this.watched = null; // { id, first }
    this.socket = null;
    this.stopped = false;
    this.attempt = 0;
    this.connectedBefore = false;
    this.nextId = 1;
    this.eventsId = null;
    this.instanceId = null;
  }

  start(filter) {
    this.filter = filter;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'live off');
    this.handlers.onStatus('off');
  }

  /** Follow this instance in the drill-down (null: none). */
  watch(id, first) {
    this.watched = id ? { id, first } : null;
    if (this.ready) this.subscribeInstance();
  }

  /** Cut the connection as a network drop would (for the browser test). */
  drop() {
    this.socket?.close(4000, 'dropped');
  }

  get ready() {
    return this.socket?.readyState === WebSocket.OPEN && this.acknowledged;
  }

  connect() {
    const url = new URL('/graphql', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.handlers.onStatus(this.connectedBefore ? 'reconnecting' : 'connecting');
    this.acknowledged = false;
    const socket = new WebSocket(url, PROTOCOL);
    this.socket = socket;
    socket.addEventListener('open', () => {
      const payload = {};
      const workspace = (this.connection.workspace ?? '').trim();
      if (workspace) payload.workspace = workspace;
      const token = (this.connection.token ?? '').trim();
      if (token) payload.Authorization = `Bearer ${token}`;
      this.send({ type: 'connection_init', payload });
    });
    socket.addEventListener('message', (message) => this.receive(JSON.parse(message.data)));
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return; // stopped, or replaced
      this.socket = null;
      if (this.stopped) return;
      if (FATAL.has(event.code)) {
        this.handlers.onStatus('refused', `${event.code} ${event.reason}`);
        return;
      }
      this.handlers.onStatus('reconnecting', `${event.code} ${event.reason}`);
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  send(message) {
    this.socket?.send(JSON.stringify(message));
  }

  receive(message) {
    switch (message.type) {
      case 'connection_ack': {
        this.acknowledged = true;
        this.attempt = 0;
        this.subscribeEvents();
        if (this.watched) this.subscribeInstance();
        this.handlers.onStatus('live');
        // Back after a drop: whatever the replay does not cover (no cursor yet) is re-read.
        if (this.connectedBefore) this.handlers.onEvent();
        this.connectedBefore = true;
        break;
      }
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'next': {
        const data = message.payload?.data;
        if (message.id === this.eventsId && data?.instanceEvents) {
          this.cursor = data.instanceEvents.cursor;
          this.handlers.onEvent();
        } else if (message.id === this.instanceId && data) {
          this.handlers.onInstance(data.instanceById);
        }
        if (message.payload?.errors?.length) {
          this.handlers.onStatus('error', message.payload.errors[0].message);
        }
        break;
      }
      case 'error':
        this.handlers.onStatus('error', message.payload?.[0]?.message ?? 'subscription refused');
        break;
      default:
        break;
    }
  }

  subscribeEvents() {
    this.eventsId = String(this.nextId++);
    this.send({
      id: this.eventsId,
      type: 'subscribe',
      payload: {
        query: EVENTS_SUBSCRIPTION,
        variables: { filter: this.filter, after: this.cursor },
      },
    });
  }

  subscribeInstance() {
    if (this.instanceId) this.send({ id: this.instanceId, type: 'complete' });
    this.instanceId = null;
    if (!this.watched) return;
    this.instanceId = String(this.nextId++);
    this.send({
      id: this.instanceId,
      type: 'subscribe',
      payload: { query: INSTANCE_SUBSCRIPTION, variables: this.watched },
    });
  }
}
