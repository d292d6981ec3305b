"""Path constants generated from yang/ by scripts/gen_paths.py; do not edit."""

from . import etsi_qkd_node_types  # noqa: F401
from . import etsi_qkd_sdn_node  # noqa: F401
from . import optical_switch  # noqa: F401
from . import qstrata_optical_switch  # noqa: F401
from . import qstrata_qfs  # noqa: F401
from . import qstrata_qkd  # noqa: F401
from . import qstrata_ss  # noqa: F401
from . import qstrata_telemetry  # noqa: F401
