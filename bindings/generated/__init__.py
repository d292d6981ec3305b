"""Path constants generated from yang/ by scripts/gen_paths.py; do not edit."""

from ..path_entry import derive as _derive
from . import etsi_qkd_node_types
from . import etsi_qkd_sdn_node
from . import optical_switch
from . import qstrata_optical_switch
from . import qstrata_qfs
from . import qstrata_qkd
from . import qstrata_ss
from . import qstrata_telemetry

for _module in (etsi_qkd_node_types, etsi_qkd_sdn_node, optical_switch, qstrata_optical_switch, qstrata_qfs, qstrata_qkd, qstrata_ss, qstrata_telemetry):
    _derive(_module)  # NAME and each list's entry(), from PATH and KEYS
