// The dashboard list in Relay: Query.instances as a paginated @connection with a filter.
import { graphql } from "relay-runtime";

export const dashboardFragment = graphql`
  fragment Dashboard_query on Query
  @refetchable(queryName: "DashboardPaginationQuery")
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 20 }
    cursor: { type: "String" }
    filter: { type: "InstanceFilter" }
  ) {
    instances(first: $count, after: $cursor, filter: $filter)
      @connection(key: "Dashboard_instances", filters: ["filter"]) {
      edges {
        node {
          id
          jobName
          status
          planTime
        }
      }
    }
  }
`;

export const dashboardQuery = graphql`
  query DashboardQuery($filter: InstanceFilter) {
    ...Dashboard_query @arguments(filter: $filter)
  }
`;
