// A job page in Relay: the job's runs as a paginated @connection, refetchable by the job's id.
import { graphql } from "relay-runtime";

export const jobInstancesFragment = graphql`
  fragment JobInstances_job on Job
  @refetchable(queryName: "JobInstancesRefetchQuery")
  @argumentDefinitions(count: { type: "Int", defaultValue: 5 }, cursor: { type: "String" }) {
    id
    name
    type
    instances(first: $count, after: $cursor) @connection(key: "JobInstances_instances") {
      totalCount
      edges {
        node {
          id
          instanceId
          status
          planTime
        }
      }
    }
  }
`;
