"""The collector's web dashboard: a topology view, per-link plots, alarms and agent health.

`views` (shared with `qstrata up`'s status table) and `store.StoreReader` (shared with `qstrata
query`) compute everything; this package only serves it: `http` parses requests and prints
responses (sans-IO), `api` turns the collector's registry, health view, alarms and store into
JSON, `graph` reads the network's nodes and fibres, `server` is the asyncio glue (HTTP + server-sent
events), and `static/` is the page (vanilla JS drawing SVG: nothing is fetched from the internet).
The output that starts it is `qstrata.collectors.outputs.dashboard`.
"""
