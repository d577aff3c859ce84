// PostGraphile 5 as a benchmark contender: the amber preset plus the connection-filter plugin
// (plan-time ranges for W4), over jobql's tables in `public`. The connection string comes from
// BENCH_DATABASE_URL (a libpq URL), the port from BENCH_PORT.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
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
