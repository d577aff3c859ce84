// GraphQL Code Generator: typed documents for examples/*.graphql over schema.graphql.
// tests/clients/test_typescript.py points JOBQL_SCHEMA / JOBQL_CODEGEN_OUT elsewhere (a scratch
// schema, a temporary build directory); the defaults generate next to client.ts.
const path = require("node:path");

const root = path.resolve(__dirname, "../../..");

/** @type {import("@graphql-codegen/cli").CodegenConfig} */
module.exports = {
  schema: process.env.JOBQL_SCHEMA || path.join(root, "schema.graphql"),
  documents: [path.join(root, "examples/*.graphql")],
  ignoreNoDocuments: false,
  generates: {
    [process.env.JOBQL_CODEGEN_OUT || path.join(__dirname, "gql/")]: {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        // the query text travels with its types: what a fetch-based client sends
        documentMode: "string",
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: {
          DateTime: "string",
          Long: "number",
          // Instance.lineageFacets: any JSON value, as received
          JSON: "unknown",
        },
      },
    },
  },
};
