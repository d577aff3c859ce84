"""jobql: a GraphQL API over job instance data from batch and streaming schedulers."""
