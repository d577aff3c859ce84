// One step of a run in Relay, refetchable on its own by its id.
import { graphql } from "relay-runtime";

export const instanceNodeRowFragment = graphql`
  fragment InstanceNodeRow_node on InstanceNode
  @refetchable(queryName: "InstanceNodeRowRefetchQuery") {
    id
    name
    type
    status
    durationMs
  }
`;
