"""`jobql collect`: pull job instances from the schedulers' own APIs, incrementally, forever.

- `config.py`: the TOML file (sources, their scope, pace and credentials' variable names).
- `sources/`: one small adapter per vendor SDK: call the SDK, return ingest records; the rest of
  the collector never sees an SDK type.
- `caller.py`: every request paced (rate limit) and retried (backoff with jitter).
- `walks.py`: the incremental logic per kind of source (DLF plan-time windows, SchedulerX's
  latest instances, Realtime Compute's followed instances).
- `checkpoints.py`: where each source and job stands, as data (stored by
  `jobql.resolvers.checkpoints` in the transaction that stores the page).
- `runner.py`: passes per source, side by side, until stopped; `status.py`: `--status`;
  `command.py`: the command line's entry (`jobql.cli` hands `jobql collect` to it).

Imports go collect -> resolvers -> storage (as rest does); the adapters import neither.
"""
