"""The key-management entity (KME) of a QKD agent: ETSI GS QKD 014 key delivery without HTTP.

`service.KmeService` is the core (enc_keys, dec_keys, status, limits, token buckets, figures);
`registry` keeps key_ID records durable in a group-committed journal (`journal`); `relay` carries
keys hop by hop to the slave's KME over the device's peer channel; `material` handles key
references and bits; `config` reads the KME's configuration from the agent's running datastore.
Front ends (`agents/kme014/`) map its neutral `KmeError` kinds to their protocol.
"""
