// An instance detail in Relay: the run's steps as a paginated @connection, refetchable by the
// instance's id.
import { graphql } from "relay-runtime";

export const instanceNodesFragment = graphql`
  fragment InstanceNodes_instance on Instance
  @refetchable(queryName: "InstanceNodesRefetchQuery")
  @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" }) {
    id
    instanceId
    jobName
    status
    nodes(first: $count, after: $cursor) @connection(key: "InstanceNodes_nodes") {
      edges {
        node {
          id
          ...InstanceNodeRow_node
        }
      }
    }
  }
`;
