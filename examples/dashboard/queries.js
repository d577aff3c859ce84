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

/** The instances table: one page of the filtered instances, newest planned first. */
export const INSTANCES_QUERY = `query DashboardInstances($filter: InstanceFilter, $first: Int!, $after: String) {
  instances(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id jobName instanceId status planTime startTime durationMs }
  }
}`;

/**
 * Counts per status: one aliased `instances(filter: { statuses: [X] }) { totalCount }` per status,
 * all in the plan time range, in a single request. `first: 1` keeps the estimated cost low; no row
 * is selected, only the count.
 */
export function statusCountsQuery(statuses = INSTANCE_STATUSES) {
  const fields = statuses.map(
    (status) =>
      `  ${status}: instances(first: 1, filter: { statuses: [${status}], ` +
      'planTimeAfter: $after, planTimeBefore: $before }) { totalCount }',
  );
  return `query DashboardStatusCounts($after: DateTime, $before: DateTime) {\n${fields.join('\n')}\n}`;
}

/** The timeline: the latest runs of the filter by start time, with what a bar needs. */
export const TIMELINE_QUERY = `query DashboardTimeline($filter: InstanceFilter, $first: Int!) {
  instances(filter: $filter, first: $first, orderBy: { field: START_TIME, direction: DESC }) {
    nodes { id jobName instanceId status startTime endTime }
  }
}`;

/** The drill-down: one instance, by global id, with its nodes. */
export const INSTANCE_NODES_QUERY = `query DashboardInstanceNodes($id: ID!, $first: Int!) {
  node(id: $id) {
    ... on Instance {
      jobName
      instanceId
      nodes(first: $first) {
        totalCount
        nodes { name type status startTime durationMs retryTimes }
      }
    }
  }
}`;
