// The dashboard's GraphQL documents: one per view, each selecting only what that view shows
// (plus `id`, the global id the drill-down fetches by).

// The values of the schema's InstanceStatus enum, in the order the counts panel lists them.
export const INSTANCE_STATUSES = [
  'WAITING',
  'RUNNING',
  'SUCCESS',
  'FAIL',
  'RUNNING_EXCEPTION',
  'SKIP_BY_DEPEND',
  'FREEZE',
  'PAUSE',
  'MANUAL_STOP',
  'REJECTED',
];

export const PAGE_SIZE = 50;
export const TIMELINE_SIZE = 40;
// An instance has 1..30 nodes in the demo data; the drill-down says so when there are more.
export const NODES_SIZE = 100;
// The drill-down's "slowest nodes": this many node names of the job, by p95 duration.
export const SLOWEST_NODES = 5;
// The job picker reads the jobs by name this many at a time: the first page on Apply, the next
// one on "More jobs" (after the connection's `endCursor`). A job opened in the drill-down is added.
export const JOBS_SIZE = 200;
// The most `jobs(first:)` takes: a live re-read of a longer list asks for it in several pages.
export const JOBS_MAX_PAGE = 1000;
// The windows (days, ending with the day of the job's latest run) the job charts offer.
export const STATS_WINDOWS = [7, 30, 90];
export const DEFAULT_STATS_WINDOW = 30;

/** The instances table: one page of the filtered instances, newest planned first. */
export const INSTANCES_QUERY = `query DashboardInstances($filter: InstanceFilter, $first: Int!, $after: String) {
  instances(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id jobName instanceId status planTime startTime durationMs }
  }
}`;

/**
 * Counts per status: the `countsByStatus` of the instances in the plan time range (every status,
 * zero included, in the enum's order), one field in one request. `first: 1` keeps the estimated
 * cost low; no row is selected, only the counts.
 */
export const STATUS_COUNTS_QUERY = `query DashboardStatusCounts($filter: InstanceFilter) {
  instances(filter: $filter, first: 1) {
    countsByStatus { status count }
  }
}`;

/** The timeline: the latest runs of the filter by start time, with what a bar needs. */
export const TIMELINE_QUERY = `query DashboardTimeline($filter: InstanceFilter, $first: Int!) {
  instances(filter: $filter, first: $first, orderBy: { field: START_TIME, direction: DESC }) {
    nodes { id jobName instanceId status startTime endTime }
  }
}`;

/**
 * The drill-down: one instance, by global id, with its nodes and the job's slowest node names
 * (p95 duration over the job's runs of the 30 days up to this one, `nodeStats`' default window).
 */
export const INSTANCE_NODES_QUERY = `query DashboardInstanceNodes($id: ID!, $first: Int!, $slowest: Int!) {
  node(id: $id) {
    ... on Instance {
      jobName
      instanceId
      nodes(first: $first) {
        totalCount
        nodes { name type status startTime durationMs retryTimes }
      }
      nodeStats(orderBy: SLOWEST, first: $slowest) {
        name runs failures durationMs { p50 p95 }
      }
    }
  }
}`;

/**
 * The drill-down's slowest nodes alone, read again (with "Live") after its instance changed: a
 * change of its nodes changes the job's node statistics.
 */
export const SLOWEST_NODES_QUERY = `query DashboardSlowestNodes($id: ID!, $slowest: Int!) {
  node(id: $id) {
    ... on Instance {
      nodeStats(orderBy: SLOWEST, first: $slowest) {
        name runs failures durationMs { p50 p95 }
      }
    }
  }
}`;

/**
 * The job picker: one page of job names by name, each with its latest planned run (where its
 * charts' window ends). `filter` is the picker's search (`{ nameStartsWith }`, the API's own
 * filter) or null; `after` is the previous page's `endCursor`.
 */
export const JOBS_QUERY = `query DashboardJobs($filter: JobFilter, $first: Int!, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { name instances(first: 1) { nodes { planTime } } }
  }
}`;

/** The latest planned run of one job that no list read has brought (opened in the drill-down). */
export const JOB_LATEST_RUN_QUERY = `query DashboardJobLatestRun($name: String!) {
  job(name: $name) {
    instances(first: 1) { nodes { planTime } }
  }
}`;

/**
 * The job charts: one job's runs in the window, per UTC day: p50/p95 duration, and the counts by
 * status the failure rate (FAIL / all) is drawn from; with the window's totals for the summary.
 */
export const JOB_STATS_QUERY = `query DashboardJobStats($name: String!, $window: StatsWindow!) {
  job(name: $name) {
    stats(window: $window, bucket: DAY) {
      count
      successRate
      durationMs { p50 p95 }
      timeline {
        start
        count
        durationMs { p50 p95 }
        countsByStatus { status count }
      }
    }
  }
}`;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The plan time window of a job's charts: `days` whole UTC days ending with the day of its latest
 * planned run (today when that is in the future, or when it has none), as a `StatsWindow` (both
 * bounds exclusive: `planTimeAfter` is the millisecond before the first midnight).
 */
export function statsWindow(latestPlanTime, days, now = Date.now()) {
  const latest = latestPlanTime ? Date.parse(latestPlanTime) : now;
  const end = (Math.floor(Math.min(latest, now) / DAY_MS) + 1) * DAY_MS;
  const start = end - days * DAY_MS;
  return {
    planTimeAfter: new Date(start - 1).toISOString(),
    planTimeBefore: new Date(end).toISOString(),
  };
}
