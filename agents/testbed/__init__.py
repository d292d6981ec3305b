"""`qstrata up`: a whole emulated quantum network from one topology file.

One module per job: `plan.py` (the topology's controller, scenario and collector sections,
checked with YAML paths), `endpoints.py` (STATE_DIR/endpoints.json), `hosting.py` (agents in this
process or one process each), `collection.py` (the collector's gNMI targets and subscriptions,
one per agent), `controller.py` (the built-in SDN controller, NETCONF only), `scenario.py` (scripted
disturbances in the twins' world), `keyapp.py` (the built-in application consuming keys over ETSI
GS QKD 014), `kme_client.py` (its ETSI GS QKD 014 client, which `qstrata keys` shares),
`keys_cli.py` (`qstrata keys`), `status.py` (the live status table), `network.py` (assembly,
start-up order, clean stop) and `cli.py` (the `up`/`testbed` and `demo` sub-commands).
"""
