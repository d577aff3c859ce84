// PostGraphile 5 as a benchmark contender: the amber preset plus the connection-filter plugin
// (plan-time ranges for W4), over jobql's tables in `public`. The connection string comes from
// BENCH_DATABASE_URL (a libpq URL), the port from BENCH_PORT.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { pgSmartTags } from "postgraphile/utils";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

// jobql's monthly partitions (docs/partitioning.md) have no foreign key from instance_node to
// instance (a partitioned table's keys hold the plan time), which PostGraphile reads its
// relations from: on a partitioned database the same relation is declared by smart tags, with
// instance.id unique (it is: one sequence hands ids out). An unpartitioned database has the key.
const partitioned = (name) => (table) => table.relname === name && table.relkind === "p";
const PartitionedKeysPlugin = pgSmartTags([
  { kind: "class", match: partitioned("instance"), tags: { unique: "id" } },
  {
    kind: "class",
    match: partitioned("instance_node"),
    tags: { foreignKey: "(instance_id) references instance (id)" },
  },
]);

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  plugins: [PartitionedKeysPlugin],
  // Every column orderable and filterable, whatever the indexes say.
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [
    makePgService({
      connectionString: process.env.BENCH_DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.BENCH_POOL_SIZE ?? "10") },
    }),
  ],
  grafserv: {
    port: Number(process.env.BENCH_PORT ?? "5678"),
    host: "127.0.0.1",
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

export default preset;
