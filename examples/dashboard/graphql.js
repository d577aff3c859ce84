// A minimal GraphQL-over-HTTP client: one POST per operation to the page's own origin.

export const ENDPOINT = '/graphql';

/** An answer that carries `errors`, or an HTTP failure, with the server's codes kept. */
export class GraphQLRequestError extends Error {
  constructor(message, { status, codes = [] } = {}) {
    super(message);
    this.name = 'GraphQLRequestError';
    this.status = status;
    this.codes = codes;
  }
}

/**
 * Send one operation. `connection` is `{ workspace, token }`: the workspace travels in the
 * `workspace` header (jobql's rule; empty means `default`), a token, when given, as
 * `Authorization: Bearer <token>`. Returns `data`; throws GraphQLRequestError on any error.
 */
export async function request(document, variables, connection, { signal } = {}) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/graphql-response+json, application/json;q=0.9',
  };
  const workspace = (connection.workspace ?? '').trim();
  if (workspace) headers.workspace = workspace;
  const token = (connection.token ?? '').trim();
  if (token) headers.Authorization = `Bearer ${token}`;

  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: document, variables }),
      credentials: 'omit',
      signal,
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new GraphQLRequestError(`jobql is unreachable: ${error.message}`);
  }

  let body = null;
  try {
    body = await response.json();
  } catch {
    // A proxy's HTML error page or an empty body: reported with the status below.
  }
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  if (errors.length > 0) {
    const codes = errors.map((error) => error?.extensions?.code).filter(Boolean);
    const text = errors
      .map((error) => {
        const code = error?.extensions?.code;
        return code ? `${code}: ${error.message}` : String(error?.message ?? error);
      })
      .join('\n');
    throw new GraphQLRequestError(text, { status: response.status, codes });
  }
  if (!response.ok || !body || typeof body.data !== 'object' || body.data === null) {
    throw new GraphQLRequestError(`jobql answered HTTP ${response.status} without data`, {
      status: response.status,
    });
  }
  return body.data;
}
