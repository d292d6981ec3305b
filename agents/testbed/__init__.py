"""`qstrata up`: a whole emulated quantum network from one topology file.

One module per job: `plan.py` (the topology's controller, scenario and collector sections,
checked with YAML paths), `endpoints.py` (STATE_DIR/endpoints.json), `hosting.py` (agents in this
process or one process each), `collection.py` (the collector's gNMI targets and subscriptions,
one per agent), `controller.py` (the built-in SDN controller, NETCONF only), `scenario.py` (scripted
disturbances in the twins' world), `status.py` (the live status table), `network.py` (assembly,
start-up order, clean stop) and `cli.py` (the `up`/`testbed` and `demo` sub-commands).
"""
