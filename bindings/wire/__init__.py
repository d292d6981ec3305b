"""What an agent and its clients both speak, kept once (`qstrata.bindings.wire`).

RFC 6242 framing, the safe XML parser for untrusted NETCONF input, TLS helpers, host:port as URLs
and gRPC targets write it, gNMI's wire encoding, the client side of authentication, the one
NETCONF client and the event-loop runner.
Agents, collectors, the conformance kit and the tests all import these from here, the way every
scrapli driver reuses one channel. Nothing here imports `qstrata.agents` or `qstrata.collectors`
(tests/bindings/test_boundaries.py): the wire sits below both, next to the schema layer.
"""
