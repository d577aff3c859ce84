// Rendering: plain DOM and SVG, no framework. Every text goes in through textContent, never HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** `2025-05-31T22:47:00.000Z` -> `2025-05-31 22:47:00` (UTC), or an en dash for null. */
export function formatTime(value) {
  if (!value) return '–';
  return value.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

/** Milliseconds -> `850 ms`, `42 s`, `6 min 41 s`, `2 h 05 min`. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${ms} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
}

function statusBadge(status) {
  return element('span', { class: `status status-${status}` }, status);
}

export function renderStatusChoices(container, statuses) {
  container.replaceChildren(
    ...statuses.map((status) => {
      const label = element('label', { class: `choice status-${status}` });
      const box = element('input', { type: 'checkbox', name: 'status', value: status });
      label.append(box, ` ${status}`);
      return label;
    }),
  );
}

export function renderCounts(section, counts, onPick) {
  const list = section.querySelector('.counts');
  list.replaceChildren(
    ...counts.map(({ status, count }) => {
      const item = element('li', { 'data-status': status, 'data-count': String(count) });
      const button = element('button', {
        type: 'button',
        class: `count status-${status}`,
        title: `Show only ${status}`,
      });
      button.append(element('span', { class: 'number' }, count.toLocaleString('en')));
      button.append(element('span', { class: 'label' }, status));
      button.addEventListener('click', () => onPick(status));
      item.append(button);
      return item;
    }),
  );
}

export function renderInstances(section, page, { pageNumber, pageSize, onOpen, selectedId }) {
  const body = section.querySelector('tbody');
  const { nodes, totalCount } = page;
  const first = nodes.length === 0 ? 0 : (pageNumber - 1) * pageSize + 1;
  const last = nodes.length === 0 ? 0 : first + nodes.length - 1;
  section.querySelector('.summary').textContent =
    `${first}–${last} of ${totalCount.toLocaleString('en')}`;
  section.dataset.totalCount = String(totalCount);
  if (nodes.length === 0) {
    const row = element('tr');
    row.append(element('td', { colspan: '6', class: 'empty' }, 'No instances match.'));
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...nodes.map((instance) => {
      const row = element('tr', {
        class: 'instance',
        tabindex: '0',
        'data-id': instance.id,
        'data-job-name': instance.jobName,
        'data-instance-id': String(instance.instanceId),
      });
      if (instance.id === selectedId) row.classList.add('selected');
      const status = element('td');
      status.append(statusBadge(instance.status));
      row.append(
        element('td', { class: 'job' }, instance.jobName),
        element('td', { class: 'number' }, String(instance.instanceId)),
        status,
        element('td', { class: 'time' }, formatTime(instance.planTime)),
        element('td', { class: 'time' }, formatTime(instance.startTime)),
        element('td', { class: 'number' }, formatDuration(instance.durationMs)),
      );
      row.addEventListener('click', () => onOpen(instance));
      row.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') onOpen(instance);
      });
      return row;
    }),
  );
}

function shorten(text, length) {
  return text.length <= length ? text : `…${text.slice(text.length - length + 1)}`;
}

const ROW_HEIGHT = 18;
const LABEL_WIDTH = 230;
const CHART_WIDTH = 1000;
const AXIS_HEIGHT = 22;

/**
 * SVG bars by start and end time. A run without an end (still running, or its end was never
 * reported) is drawn to the right edge, dashed.
 */
export function renderTimeline(section, runs, { limit, onOpen }) {
  const chart = section.querySelector('.chart');
  const started = runs.filter((run) => run.startTime);
  section.querySelector('.summary').textContent =
    `(${started.length} run${started.length === 1 ? '' : 's'}, latest ${limit} by start time)`;
  if (started.length === 0) {
    chart.replaceChildren(element('p', { class: 'empty' }, 'No started runs match.'));
    return;
  }
  const starts = started.map((run) => Date.parse(run.startTime));
  const ends = started.filter((run) => run.endTime).map((run) => Date.parse(run.endTime));
  const from = Math.min(...starts);
  let to = Math.max(...starts, ...ends);
  if (to === from) to = from + 60_000;
  const plot = CHART_WIDTH - LABEL_WIDTH - 10;
  const x = (t) => LABEL_WIDTH + ((t - from) / (to - from)) * plot;
  const height = AXIS_HEIGHT + started.length * ROW_HEIGHT + 4;

  const root = svg('svg', {
    viewBox: `0 0 ${CHART_WIDTH} ${height}`,
    role: 'img',
    'aria-label': `Timeline of ${started.length} runs`,
    'data-fields': 'jobName instanceId status startTime endTime',
  });
  const ticks = 5;
  for (let i = 0; i <= ticks; i += 1) {
    const t = from + ((to - from) * i) / ticks;
    const tx = x(t);
    root.append(svg('line', { x1: tx, x2: tx, y1: AXIS_HEIGHT - 4, y2: height, class: 'grid' }));
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    root.append(
      svg(
        'text',
        { x: tx, y: 12, class: 'tick', 'text-anchor': anchor },
        formatTime(new Date(t).toISOString()).slice(5, 16),
      ),
    );
  }
  started
    // Oldest at the top, like a Gantt chart.
    .slice()
    .sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime))
    .forEach((run, index) => {
      const y = AXIS_HEIGHT + index * ROW_HEIGHT;
      const start = Date.parse(run.startTime);
      const end = run.endTime ? Date.parse(run.endTime) : to;
      const group = svg('g', {
        class: `run status-${run.status}`,
        'data-id': run.id,
        'data-job-name': run.jobName,
        'data-instance-id': String(run.instanceId),
        tabindex: '0',
      });
      group.append(
        svg('title', {}, `${run.jobName} #${run.instanceId} ${run.status}\n` +
          `${formatTime(run.startTime)} → ${run.endTime ? formatTime(run.endTime) : 'open'}`),
        svg('text', { x: LABEL_WIDTH - 6, y: y + 13, class: 'label', 'text-anchor': 'end' },
          shorten(`${run.jobName} #${run.instanceId}`, 32)),
        svg('rect', {
          x: x(start),
          y: y + 3,
          width: Math.max(2, x(end) - x(start)),
          height: ROW_HEIGHT - 6,
          rx: 2,
          class: run.endTime ? 'bar' : 'bar open',
        }),
      );
      group.addEventListener('click', () => onOpen(run));
      group.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') onOpen(run);
      });
      root.append(group);
    });
  chart.replaceChildren(root);
}

export function renderNodes(section, instance, { limit }) {
  section.hidden = false;
  const body = section.querySelector('table.nodes tbody');
  const summary = section.querySelector('.summary');
  if (!instance) {
    summary.textContent = 'an instance that is no longer there';
    body.replaceChildren();
    return;
  }
  const { nodes, totalCount } = instance.nodes;
  summary.textContent =
    `${instance.jobName} #${instance.instanceId} (${totalCount} node${totalCount === 1 ? '' : 's'}` +
    `${totalCount > nodes.length ? `, first ${limit} shown` : ''})`;
  section.dataset.jobName = instance.jobName;
  section.dataset.instanceId = String(instance.instanceId);
  body.replaceChildren(
    ...nodes.map((node) => {
      const row = element('tr', { class: 'node', 'data-name': node.name });
      const status = element('td');
      status.append(statusBadge(node.status));
      row.append(
        element('td', { class: 'name' }, node.name),
        element('td', {}, node.type),
        status,
        // The year is the instance's; the narrow panel shows month, day and time.
        element('td', { class: 'time', title: formatTime(node.startTime) },
          node.startTime ? formatTime(node.startTime).slice(5) : '–'),
        element('td', { class: 'number' }, formatDuration(node.durationMs)),
        element('td', { class: 'number' }, node.retryTimes === null ? '–' : String(node.retryTimes)),
      );
      return row;
    }),
  );
}

/**
 * The drill-down's slowest node names (`nodeStats(orderBy: SLOWEST)`), in the API's order. The
 * raw numbers ride along as data attributes, the cells show them formatted.
 */
export function renderSlowestNodes(section, stats) {
  const body = section.querySelector('table.slowest tbody');
  if (stats.length === 0) {
    const row = element('tr');
    row.append(element('td', { colspan: '5', class: 'empty' }, 'No node ran in the window.'));
    body.replaceChildren(row);
    return;
  }
  const ms = (value) => (value === null ? '–' : formatDuration(Math.round(value)));
  body.replaceChildren(
    ...stats.map((node) => {
      const row = element('tr', {
        class: 'slow-node',
        'data-name': node.name,
        'data-runs': String(node.runs),
        'data-failures': String(node.failures),
        'data-p50': JSON.stringify(node.durationMs.p50),
        'data-p95': JSON.stringify(node.durationMs.p95),
      });
      row.append(
        element('td', { class: 'name' }, node.name),
        element('td', { class: 'number' }, String(node.runs)),
        element('td', { class: 'number' }, String(node.failures)),
        element('td', { class: 'number' }, ms(node.durationMs.p50)),
        element('td', { class: 'number' }, ms(node.durationMs.p95)),
      );
      return row;
    }),
  );
}

/** The job picker: the job names listed; keeps `selected` (added when it is not listed). */
export function renderJobChoices(select, listed, selected) {
  const names = [...listed];
  if (selected && !names.includes(selected)) names.push(selected);
  select.replaceChildren(...names.map((name) => element('option', { value: name }, name)));
  select.value = selected ?? '';
}

/** `200 of 3,012 jobs`, `3 of 3 jobs starting with "etl_"`: how far the picker's list goes. */
export function renderJobsShown(output, list) {
  if (!list) {
    output.textContent = '';
    return;
  }
  const listed = list.names.length.toLocaleString('en');
  const total = list.totalCount.toLocaleString('en');
  const matching = list.search ? ` starting with "${list.search}"` : '';
  output.textContent = `${listed} of ${total} job${list.totalCount === 1 ? '' : 's'}${matching}`;
}

export function renderWindowChoices(select, windows, selected) {
  select.replaceChildren(
    ...windows.map((days) => element('option', { value: String(days) }, `${days} days`)),
  );
  select.value = String(selected);
}

/** `46 runs, 87 % succeeded, p50 1 min 43 s, p95 3 min 34 s (2025-05-02 – 2025-05-31)`. */
export function renderJobStatsSummary(section, stats, firstDay, lastDay) {
  const summary = section.querySelector('.summary');
  if (!stats) {
    summary.textContent = '(no such job)';
    return;
  }
  const ms = (value) => (value === null ? '–' : formatDuration(Math.round(value)));
  const parts = [`${stats.count.toLocaleString('en')} run${stats.count === 1 ? '' : 's'}`];
  if (stats.successRate !== null) parts.push(`${Math.round(stats.successRate * 100)} % succeeded`);
  parts.push(`p50 ${ms(stats.durationMs.p50)}`, `p95 ${ms(stats.durationMs.p95)}`);
  summary.textContent = `(${parts.join(', ')}; ${firstDay} – ${lastDay})`;
}
