// Apollo Client 4 with its persisted-queries link (hashed queries over GET) against a live jobql.
//
// usage: node apollo-apq.mjs <base url> <workspace> <operation name>
//
// Runs one query with two fresh clients (two empty caches, as two browsers would) and prints
// {"first", "second", "exchanges"} on stdout: both results, and every HTTP exchange as the
// client's fetch saw it (method, whether the text or only the hash was sent, status, caching
// headers, error codes). The Python test decides what is right. Exits non-zero when a query fails.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createHash } from 'node:crypto';

const [baseUrl, workspace, operationName] = process.argv.slice(2);
if (!baseUrl || !workspace || !/^[A-Za-z_]\w*$/.test(operationName ?? '')) {
  process.stderr.write('usage: node apollo-apq.mjs <base url> <workspace> <operation name>\n');
  process.exit(2);
}

const exchanges = [];

async function recordingFetch(input, init = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  const url = new URL(typeof input === 'string' ? input : input.url);
  const sent = method === 'GET' ? Object.fromEntries(url.searchParams) : JSON.parse(init.body);
  const extensions = typeof sent.extensions === 'string' ? JSON.parse(sent.extensions) : sent.extensions;
  const response = await fetch(input, init);
  let body = null;
  try {
    body = JSON.parse(await response.clone().text());
  } catch {
    // not JSON: the test sees body null
  }
  exchanges.push({
    method,
    query: typeof sent.query === 'string' ? sent.query : null,
    variables: typeof sent.variables === 'string' ? JSON.parse(sent.variables) : (sent.variables ?? null),
    sha256Hash: extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
    cacheControl: response.headers.get('cache-control'),
    etag: response.headers.get('etag'),
    vary: response.headers.get('vary'),
    errorCodes: (body?.errors ?? []).map((error) => error.extensions?.code ?? null),
  });
  return response;
}

function newClient() {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash('sha256').update(text).digest('hex'),
    useGETForHashedQueries: true,
  });
  const http = new HttpLink({ uri: `${baseUrl}/graphql`, fetch: recordingFetch, headers: { workspace } });
  return new ApolloClient({ cache: new InMemoryCache(), link: persisted.concat(http) });
}

const QUERY = gql(`
  query ${operationName}($first: Int!) {
    jobs(first: $first) {
      totalCount
      nodes { id name type }
    }
  }
`);

const variables = { first: 3 };
const first = await newClient().query({ query: QUERY, variables, fetchPolicy: 'network-only' });
const second = await newClient().query({ query: QUERY, variables, fetchPolicy: 'network-only' });
process.stdout.write(JSON.stringify({ first: first.data, second: second.data, exchanges }));
