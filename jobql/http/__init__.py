"""GraphQL over HTTP and WebSocket: the endpoint (GraphQL-over-HTTP rules, the WebSocket adapter),
the fast lane, persisted queries and HTTP caching, body limits and admission. It uses the schema
and the resolvers; the schema never imports it. The source REST APIs are `jobql.rest`."""
