"""OpenLineage out: jobql's runs as RunEvents, read from the instance event log with a cursor of
their own and sent through openlineage-python's transports (README, "OpenLineage out").

`config.py` decides whether it runs, `runs.py` maps a batch of the log to RunEvents (pure),
`client.py` is the thin adapter around `OpenLineageClient`, `emitter.py` is the loop (lease,
read, send, retry, move the cursor) and `command.py` is `jobql emit`.
"""
