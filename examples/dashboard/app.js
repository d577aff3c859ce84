// The dashboard: filters -> three views (counts, instances, timeline), each one GraphQL request,
// a drill-down to an instance's nodes and its job's slowest nodes (one more), and the charts of one
// job (duration and failure rate per day: the job list, then one request per job and window). The
// job list is read a page at a time ("More jobs"), or searched by name through the API's filter.
// Plain ES modules, no build step; the charts are Chart.js (vendor/, charts.js). With "Live"
// ticked, a subscription says when a change matches the filter and the views re-read what they
// show; the open drill-down is itself a subscription (live.js), and a change of its nodes makes
// its slowest nodes re-read.
import { clearChart, dayLabel, drawDurations, drawFailureRates } from './charts.js';
import { GraphQLRequestError, request } from './graphql.js';
import { LiveConnection } from './live.js';
import {
  DEFAULT_STATS_WINDOW,
  INSTANCE_NODES_QUERY,
  INSTANCE_STATUSES,
  INSTANCES_QUERY,
  JOB_LATEST_RUN_QUERY,
  JOB_STATS_QUERY,
  JOBS_MAX_PAGE,
  JOBS_QUERY,
  JOBS_SIZE,
  NODES_SIZE,
  PAGE_SIZE,
  SLOWEST_NODES,
  SLOWEST_NODES_QUERY,
  STATS_WINDOWS,
  STATUS_COUNTS_QUERY,
  TIMELINE_QUERY,
  TIMELINE_SIZE,
  statsWindow,
} from './queries.js';
import {
  renderCounts,
  renderInstances,
  renderJobChoices,
  renderJobStatsSummary,
  renderJobsShown,
  renderNodes,
  renderSlowestNodes,
  renderStatusChoices,
  renderTimeline,
  renderWindowChoices,
} from './views.js';

const WORKSPACE_KEY = 'jobql.dashboard.workspace';

const $ = (selector) => document.querySelector(selector);

const form = $('#filters');
const views = $('#views');
const sections = {
  counts: $('#counts'),
  instances: $('#instances'),
  timeline: $('#timeline'),
  nodes: $('#nodes'),
  jobStats: $('#jobStats'),
};

const state = {
  generation: 0, // bumped on every Apply; a view marks the generation it has drawn
  connection: { workspace: 'default', token: '' },
  filter: {},
  cursors: [null], // `after` of each page visited; the last one is the current page
  selectedId: null,
  controller: null,
  pageController: null,
  live: null, // a LiveConnection while "Live" is ticked
  refreshTimer: null,
  refreshController: null,
  refreshes: 0,
  // The picker's list once read: { search, names, totalCount, hasNextPage, endCursor }.
  jobs: null,
  latestRuns: new Map(), // job name -> plan time of its latest run (null: none), as last read
  jobsRead: 0, // bumped by every read of the list: only the newest one is drawn
  jobsController: null, // a search or "More jobs" under way; a newer one aborts it
  searchTimer: null,
  statsJob: null, // the job the charts show
  statsDays: DEFAULT_STATS_WINDOW,
  statsController: null,
  drillNodes: null, // the drill-down's nodes as last read or pushed (JSON): tells a change
  slowestTimer: null,
  slowestController: null,
};
// Changes arriving together are one re-read.
const REFRESH_DELAY_MS = 250;
// A search is sent once the typing pauses.
const SEARCH_DELAY_MS = 250;

/** `2025-05-31T22:47` from a datetime-local input, read as UTC -> `2025-05-31T22:47:00Z`. */
function utc(value) {
  if (!value) return null;
  return value.length === 16 ? `${value}:00Z` : `${value}Z`;
}

function readForm() {
  const data = new FormData(form);
  const statuses = data.getAll('status');
  const filter = {};
  if (statuses.length > 0) filter.statuses = statuses;
  const after = utc(data.get('planTimeAfter'));
  const before = utc(data.get('planTimeBefore'));
  if (after) filter.planTimeAfter = after;
  if (before) filter.planTimeBefore = before;
  return {
    connection: {
      workspace: String(data.get('workspace') ?? '').trim() || 'default',
      token: String(data.get('token') ?? ''),
    },
    filter,
  };
}

function showError(error) {
  const box = $('#error');
  if (!error) {
    box.hidden = true;
    box.textContent = '';
    delete box.dataset.codes;
    return;
  }
  box.hidden = false;
  const codes = error instanceof GraphQLRequestError ? error.codes : [];
  box.dataset.codes = codes.join(' ');
  box.textContent = error.message;
}

function markDrawn(section, generation, failed = false) {
  section.dataset.generation = String(generation);
  section.classList.toggle('failed', failed);
}

/** Run one view's request; stale answers (an older Apply) are dropped. */
async function runView(section, generation, load) {
  section.classList.add('loading');
  try {
    await load();
    if (generation === state.generation) markDrawn(section, generation);
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (generation === state.generation) {
      showError(error);
      markDrawn(section, generation, true);
    }
  } finally {
    if (generation === state.generation) section.classList.remove('loading');
  }
}

function loadCounts(generation, signal) {
  return runView(sections.counts, generation, async () => {
    // Every status is counted, whichever are ticked: a click on one filters by it.
    const filter = {};
    if (state.filter.planTimeAfter) filter.planTimeAfter = state.filter.planTimeAfter;
    if (state.filter.planTimeBefore) filter.planTimeBefore = state.filter.planTimeBefore;
    const data = await request(STATUS_COUNTS_QUERY, { filter }, state.connection, { signal });
    if (generation !== state.generation) return;
    renderCounts(sections.counts, data.instances.countsByStatus, pickStatus);
  });
}

function loadInstances(generation, signal) {
  return runView(sections.instances, generation, async () => {
    const after = state.cursors[state.cursors.length - 1];
    const variables = { filter: state.filter, first: PAGE_SIZE, after };
    const data = await request(INSTANCES_QUERY, variables, state.connection, { signal });
    if (generation !== state.generation) return;
    const page = data.instances;
    renderInstances(sections.instances, page, {
      pageNumber: state.cursors.length,
      pageSize: PAGE_SIZE,
      onOpen: openInstance,
      selectedId: state.selectedId,
    });
    $('#previousPage').disabled = state.cursors.length <= 1;
    const next = $('#nextPage');
    next.disabled = !page.pageInfo.hasNextPage;
    next.dataset.cursor = page.pageInfo.endCursor ?? '';
    sections.instances.dataset.page = String(state.cursors.length);
  });
}

function loadTimeline(generation, signal) {
  return runView(sections.timeline, generation, async () => {
    const variables = { filter: state.filter, first: TIMELINE_SIZE };
    const data = await request(TIMELINE_QUERY, variables, state.connection, { signal });
    if (generation !== state.generation) return;
    renderTimeline(sections.timeline, data.instances.nodes, {
      limit: TIMELINE_SIZE,
      onOpen: openInstance,
    });
  });
}

/** A signal for one load of the job charts: a newer load (another job or window) aborts it. */
function statsSignal(signal) {
  state.statsController?.abort();
  state.statsController = new AbortController();
  return AbortSignal.any([signal, state.statsController.signal]);
}

/** The charts of the chosen job and window: one request. */
async function drawJobStats(generation, signal) {
  const section = sections.jobStats;
  const name = state.statsJob;
  const days = state.statsDays;
  const charts = [$('#durationChart'), $('#failureChart')];
  if (!name) {
    charts.forEach(clearChart);
    section.querySelector('.summary').textContent = '(no jobs in this workspace)';
    Object.assign(section.dataset, { job: '', days: String(days), count: '0' });
    return;
  }
  if (!state.latestRuns.has(name)) {
    // A job no list read has brought (opened in the drill-down): its latest run first.
    const data = await request(JOB_LATEST_RUN_QUERY, { name }, state.connection, { signal });
    if (generation !== state.generation) return;
    state.latestRuns.set(name, data.job?.instances.nodes[0]?.planTime ?? null);
  }
  const planWindow = statsWindow(state.latestRuns.get(name) ?? null, days);
  const variables = { name, window: planWindow };
  const data = await request(JOB_STATS_QUERY, variables, state.connection, { signal });
  const current = name === state.statsJob && days === state.statsDays;
  if (generation !== state.generation || !current) return;
  const stats = data.job?.stats ?? null;
  const timeline = stats?.timeline ?? [];
  drawDurations(charts[0], timeline);
  drawFailureRates(charts[1], timeline);
  const firstDay = dayLabel(new Date(Date.parse(planWindow.planTimeAfter) + 1).toISOString());
  const lastDay = dayLabel(new Date(Date.parse(planWindow.planTimeBefore) - 1).toISOString());
  renderJobStatsSummary(section, stats, firstDay, lastDay);
  Object.assign(section.dataset, {
    job: name,
    days: String(days),
    planTimeAfter: planWindow.planTimeAfter,
    planTimeBefore: planWindow.planTimeBefore,
    count: String(stats?.count ?? 0),
  });
}

/**
 * `count` jobs by name whose name starts with `search` (all: ''), after the cursor `after`: one
 * request, or one per JOBS_MAX_PAGE.
 */
async function readJobs(search, count, after, signal) {
  const filter = search ? { nameStartsWith: search } : null;
  const jobs = [];
  let cursor = after;
  let page;
  do {
    const first = Math.min(count - jobs.length, JOBS_MAX_PAGE);
    const variables = { filter, first, after: cursor };
    page = (await request(JOBS_QUERY, variables, state.connection, { signal })).jobs;
    for (const job of page.nodes) {
      jobs.push({ name: job.name, latest: job.instances.nodes[0]?.planTime ?? null });
    }
    cursor = page.pageInfo.endCursor ?? cursor;
  } while (jobs.length < count && page.pageInfo.hasNextPage);
  const { hasNextPage } = page.pageInfo;
  return { jobs, totalCount: page.totalCount, hasNextPage, endCursor: cursor };
}

/**
 * Read the picker's list: `first`, the first page of `search`; `more`, the page after the listed
 * ones; `again` (Live), as many as are listed. Drawn unless a newer read or Apply came meanwhile;
 * returns the list read (null: another Apply came).
 */
async function loadJobList(generation, signal, mode, search = state.jobs?.search ?? '') {
  const listed = mode === 'first' ? [] : (state.jobs?.names ?? []);
  const count = mode === 'again' ? Math.max(JOBS_SIZE, listed.length) : JOBS_SIZE;
  const after = mode === 'more' ? state.jobs.endCursor : null;
  const read = (state.jobsRead += 1);
  const page = await readJobs(search, count, after, signal);
  if (generation !== state.generation) return null;
  for (const { name, latest } of page.jobs) state.latestRuns.set(name, latest);
  const names = page.jobs.map((job) => job.name);
  const list = {
    search,
    names: mode === 'more' ? [...listed, ...names] : names,
    totalCount: page.totalCount,
    hasNextPage: page.hasNextPage,
    endCursor: page.endCursor,
  };
  if (read === state.jobsRead) {
    state.jobs = list;
    renderJobPicker();
  }
  return list;
}

/** The picker as listed: the jobs read so far, the charts' job kept, how many there are. */
function renderJobPicker() {
  const list = state.jobs;
  const names = list?.names ?? [];
  renderJobChoices($('#statsJob'), names, state.statsJob);
  renderJobsShown($('#jobsShown'), list);
  const more = $('#moreJobs');
  more.hidden = !list?.hasNextPage;
  Object.assign(sections.jobStats.dataset, {
    jobsTotal: String(list?.totalCount ?? 0),
    jobsListed: String(names.length),
    jobsSearch: list?.search ?? '',
  });
}

/** A search typed, or "More jobs": the list alone (the charts keep their job). */
async function readJobList(mode, search) {
  state.jobsController?.abort();
  const controller = new AbortController();
  state.jobsController = controller;
  const generation = state.generation;
  const signal = AbortSignal.any([state.controller.signal, controller.signal]);
  const more = $('#moreJobs');
  more.disabled = true;
  try {
    await loadJobList(generation, signal, mode, search);
  } catch (error) {
    if (error.name !== 'AbortError' && generation === state.generation) showError(error);
  } finally {
    if (state.jobsController === controller) more.disabled = false;
  }
}

function searchJobs() {
  clearTimeout(state.searchTimer);
  const search = () => readJobList('first', $('#jobSearch').value);
  state.searchTimer = setTimeout(search, SEARCH_DELAY_MS);
}

function moreJobs() {
  if (state.jobs?.hasNextPage) readJobList('more');
}

/** The job list (when asked to, or not read yet), then the charts. */
function loadJobStats(generation, signal, { reloadJobs = false } = {}) {
  const stats = statsSignal(signal);
  return runView(sections.jobStats, generation, async () => {
    if (reloadJobs || state.jobs === null) {
      const again = state.jobs !== null;
      const search = again ? state.jobs.search : $('#jobSearch').value;
      const list = await loadJobList(generation, stats, again ? 'again' : 'first', search);
      if (list === null) return;
      // After Apply (maybe another workspace) a job not listed gives way to the first; a live
      // re-read keeps the job shown, even one from beyond the list, and reads its latest run
      // again when the list did not.
      const listed = list.names.includes(state.statsJob);
      if (!state.statsJob || (!again && !listed)) state.statsJob = list.names[0] ?? null;
      else if (!listed) state.latestRuns.delete(state.statsJob);
      renderJobPicker();
    }
    await drawJobStats(generation, stats);
  });
}

/** Another job or window, picked or opened in the drill-down: redraw the charts only. */
function showJobStats({ job = state.statsJob, days = state.statsDays } = {}) {
  if (job === state.statsJob && days === state.statsDays) return Promise.resolve();
  state.statsJob = job;
  state.statsDays = days;
  renderJobPicker();
  $('#statsWindow').value = String(days);
  // Reads the job list too when this cuts short an Apply's load of it.
  return loadJobStats(state.generation, state.controller.signal);
}

function newGeneration() {
  state.controller?.abort();
  state.pageController?.abort();
  state.controller = new AbortController();
  state.generation += 1;
  views.dataset.generation = String(state.generation);
  showError(null);
  return { generation: state.generation, signal: state.controller.signal };
}

async function apply() {
  const { connection, filter } = readForm();
  state.connection = connection;
  state.filter = filter;
  state.cursors = [null];
  // The job list is the workspace's (and the token's): read it again.
  state.jobs = null;
  state.latestRuns = new Map();
  localStorage.setItem(WORKSPACE_KEY, connection.workspace);
  const { generation, signal } = newGeneration();
  // The drill-down belongs to the previous filter: close it.
  sections.nodes.hidden = true;
  state.selectedId = null;
  clearTimeout(state.slowestTimer);
  if (state.live) startLive(); // the new filter and connection
  await Promise.all([
    loadCounts(generation, signal),
    loadInstances(generation, signal),
    loadTimeline(generation, signal),
    loadJobStats(generation, signal),
  ]);
}

async function turnPage(direction) {
  if (direction > 0) {
    const cursor = $('#nextPage').dataset.cursor;
    if (!cursor) return;
    state.cursors.push(cursor);
  } else if (state.cursors.length > 1) {
    state.cursors.pop();
  } else {
    return;
  }
  // Paging redraws the table only: the filter, and so the other views, stay as they are.
  state.pageController?.abort();
  state.pageController = new AbortController();
  await loadInstances(state.generation, state.pageController.signal);
}

/** A change matched: re-read the views as they are (same filter, same page), once per burst. */
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    state.refreshController?.abort();
    state.refreshController = new AbortController();
    const { signal } = state.refreshController;
    const generation = state.generation;
    state.refreshes += 1;
    views.dataset.refreshes = String(state.refreshes);
    Promise.all([
      loadCounts(generation, signal),
      loadInstances(generation, signal),
      loadTimeline(generation, signal),
      // A new run may move the job's latest day, and so the window: the list is read again too.
      loadJobStats(generation, signal, { reloadJobs: true }),
    ]);
  }, REFRESH_DELAY_MS);
}

function showLiveStatus(status, detail) {
  const output = $('#liveStatus');
  output.dataset.status = status;
  output.textContent = detail ? `${status} (${detail})` : status;
}

function startLive() {
  state.live?.stop();
  state.live = new LiveConnection(state.connection, {
    onEvent: scheduleRefresh,
    onInstance: (instance) => {
      if (!instance || sections.nodes.hidden) return;
      renderNodes(sections.nodes, instance, { limit: NODES_SIZE });
      sections.nodes.dataset.pushes = String(Number(sections.nodes.dataset.pushes ?? 0) + 1);
      nodesPushed(instance.nodes);
    },
    onStatus: showLiveStatus,
  });
  // For the browser test: a network drop on demand.
  window.jobqlLive = state.live;
  state.live.start(state.filter);
  if (state.selectedId) state.live.watch(state.selectedId, NODES_SIZE);
}

function stopLive() {
  state.live?.stop();
  state.live = null;
  window.jobqlLive = null;
}

/**
 * The drill-down's instance was pushed (Live): when its nodes differ from the ones last read or
 * pushed, the job's node statistics may have changed, so the slowest nodes are read again (once
 * per burst). The push that follows every subscribe changes nothing and costs nothing.
 */
function nodesPushed(nodes) {
  const pushed = JSON.stringify(nodes);
  if (pushed === state.drillNodes) return;
  state.drillNodes = pushed;
  // While the drill-down's own read is under way, it compares when it lands.
  if (sections.nodes.dataset.opened === state.selectedId) scheduleSlowestNodes();
}

function scheduleSlowestNodes() {
  clearTimeout(state.slowestTimer);
  state.slowestTimer = setTimeout(refreshSlowestNodes, REFRESH_DELAY_MS);
}

async function refreshSlowestNodes() {
  state.slowestController?.abort();
  state.slowestController = new AbortController();
  const id = state.selectedId;
  const section = sections.nodes;
  if (!id || section.hidden) return;
  const signal = AbortSignal.any([state.controller.signal, state.slowestController.signal]);
  try {
    const variables = { id, slowest: SLOWEST_NODES };
    const data = await request(SLOWEST_NODES_QUERY, variables, state.connection, { signal });
    if (state.selectedId !== id) return;
    renderSlowestNodes(section, data.node?.nodeStats ?? []);
    section.dataset.slowestReads = String(Number(section.dataset.slowestReads ?? 0) + 1);
  } catch (error) {
    if (error.name !== 'AbortError') showError(error);
  }
}

async function openInstance(instance) {
  state.selectedId = instance.id;
  state.drillNodes = null;
  clearTimeout(state.slowestTimer);
  state.slowestController?.abort();
  showJobStats({ job: instance.jobName });
  state.live?.watch(instance.id, NODES_SIZE);
  for (const row of sections.instances.querySelectorAll('tr.instance')) {
    row.classList.toggle('selected', row.dataset.id === instance.id);
  }
  const section = sections.nodes;
  section.hidden = false;
  section.querySelector('.summary').textContent = `${instance.jobName} #${instance.instanceId} …`;
  for (const body of section.querySelectorAll('tbody')) body.replaceChildren();
  delete section.dataset.instanceId;
  delete section.dataset.opened;
  const generation = state.generation;
  await runView(section, generation, async () => {
    const variables = { id: instance.id, first: NODES_SIZE, slowest: SLOWEST_NODES };
    const data = await request(INSTANCE_NODES_QUERY, variables, state.connection);
    if (state.selectedId !== instance.id) return;
    renderNodes(section, data.node, { limit: NODES_SIZE });
    renderSlowestNodes(section, data.node?.nodeStats ?? []);
    section.dataset.opened = instance.id;
    // A push that came during the read with other nodes: this answer may predate it.
    const read = JSON.stringify(data.node?.nodes ?? null);
    if (state.drillNodes !== null && state.drillNodes !== read) scheduleSlowestNodes();
    else state.drillNodes = read;
  });
  section.scrollIntoView({ block: 'nearest' });
}

function pickStatus(status) {
  for (const box of form.querySelectorAll('input[name="status"]')) {
    box.checked = box.value === status;
  }
  form.requestSubmit();
}

function start() {
  renderStatusChoices($('#statusChoices'), INSTANCE_STATUSES);
  renderWindowChoices($('#statsWindow'), STATS_WINDOWS, state.statsDays);
  const saved = localStorage.getItem(WORKSPACE_KEY);
  if (saved) $('#workspace').value = saved;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.addEventListener('reset', () => {
    // After the browser has reset the inputs, load the unfiltered views again.
    setTimeout(() => {
      if (!$('#live').checked) stopLive(); // reset unticks "Live" without a change event
      form.requestSubmit();
    }, 0);
  });
  $('#live').addEventListener('change', (event) => {
    if (event.target.checked) startLive();
    else stopLive();
  });
  $('#statsJob').addEventListener('change', (event) => showJobStats({ job: event.target.value }));
  $('#jobSearch').addEventListener('input', searchJobs);
  $('#moreJobs').addEventListener('click', moreJobs);
  $('#statsWindow').addEventListener('change', (event) =>
    showJobStats({ days: Number(event.target.value) }),
  );
  $('#nextPage').addEventListener('click', () => turnPage(1));
  $('#previousPage').addEventListener('click', () => turnPage(-1));
  apply();
}

start();
