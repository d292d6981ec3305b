"""SDN-controller walk-through against a running `qstrata up` network (same as `qstrata demo`).

    .venv/bin/qstrata up --bare &          # in another terminal
    .venv/bin/python scripts/demo_controller.py [--state-dir state/up]

ncclient configures (cross-connect, qkd_link on both ends, qkd_app, service unit, re-route),
pygnmi watches (link status, secret key rate). The steps live in qstrata/agents/testbed/demo.py.
"""

import sys

from qstrata.agents.testbed.demo import main

if __name__ == "__main__":
    sys.exit(main())
