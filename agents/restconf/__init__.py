"""The RESTCONF front end (RFC 8040, with RFC 7951 JSON, RFC 8072 YANG Patch, RFC 8525
yang-library): aiohttp over HTTPS with the agent's CA, in the agent's event loop.

Like NETCONF and gNMI it is a thin edge: writes are `EditOperation`s through `Datastore.edit`,
reads the running or operational tree filtered by NACM, users and back-off from
`agents/access`, events from the agent's bus. Module map:

- `resource`: URL paths (RFC 8040 s3.5.3, percent-encoding) -> schema-checked data paths
- `media`: media types in and out, and the TeraFlowSDN compatibility rule
- `dialect`: plain application/json (TeraFlowSDN) <-> RFC 7951
- `codec`: request bodies -> edit trees, data nodes -> answers
- `query`: query parameters (content, depth, fields, with-defaults, insert, point, filter, times)
- `reads`: GET/HEAD pipeline (selection, NACM, pruning, entity-tags)
- `yang_patch`: RFC 8072 bodies -> operations, yang-patch-status
- `streams`: the NETCONF event stream as server-sent events, with replay
- `errors`: ErrorKind -> RFC 8040 error-tag -> HTTP status, ietf-restconf:errors bodies
- `server`: the routes, auth, conditional requests, the aiohttp server
"""
