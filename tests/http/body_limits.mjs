// Node's global fetch posts an oversized body to each path and prints what it read, one JSON line
// per path: {"path", "status", "body"}, or {"path", "error", "code"} when the request failed
// (a reset connection is `ECONNRESET`). Used by tests/test_body_limits.py.
//
//   node tests/body_limits.mjs BASE_URL BYTES PATH...

const [baseUrl, size, ...paths] = process.argv.slice(2);
const pad = "x".repeat(Number(size));
const body = new TextEncoder().encode(JSON.stringify({ query: "{ __typename }", variables: { pad } }));

for (const path of paths) {
  try {
    const response = await fetch(baseUrl + path, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(60_000),
    });
    console.log(JSON.stringify({ path, status: response.status, body: await response.text() }));
  } catch (error) {
    const code = error?.cause?.code ?? error?.name ?? null;
    console.log(JSON.stringify({ path, error: String(error?.cause ?? error), code }));
  }
}
