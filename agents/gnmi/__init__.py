"""The gNMI front end (gNMI 0.10.0, stubs from the gnmi-pb package).

It speaks gRPC at the edge and nothing below: reads are the core's operational read
(`Datastore.read_operational`), on-change takes the core's changes (`Datastore.watch_operational`),
writes go through `Datastore.edit` as protocol-neutral `EditOperation`s, users and NACM are the
agent's `UserStore` and `AccessControl`; it never sees the device. Module map:

- `requests`: gNMI paths of a request -> schema-checked patterns (origin, prefix, wildcards)
- `view`: JSON-IETF data walked by those patterns into leaves
- `encode`: leaves -> wire bytes of `Update`, `Notification`, `SubscribeResponse`
- `target`: one agent as a gNMI target (data, Set, auth, events)
- `subscribe`: the STREAM/ONCE/POLL engine of one Subscribe call
- `setreq`: SetRequest -> datastore edit
- `service`: the four RPCs, routing by `prefix.target`
- `tls`, `server`, `gateway`: certificates, the grpc.aio server, one port for many agents
"""
