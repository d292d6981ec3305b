"""NETCONF action: an edit-config on an agent (by default the agent that raised the alarm).

The configuration is a template: ``{link_id}``, ``{node}``, ``{agent}``... are filled from the
alarm and the labels of the series that raised it (XML-escaped), e.g. disable a QKD link whose
QBER is too high::

    <qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkd_links><qkd_link>
      <qkdl_id>{link_id}</qkdl_id><qkdl_enable>false</qkdl_enable>
    </qkd_link></qkd_links></qkd_node>
"""

from __future__ import annotations

from typing import Any

from qstrata.bindings.wire.netconf_client import NetconfEndpoint, NetconfError, edit_config

from ..model import Alarm
from . import ActionConfig, ActionError, render, target_config


class NetconfAction:
    def __init__(self, config: ActionConfig, resolve_target: Any = None) -> None:
        o = config.options
        self.template: str = o["config"]
        self.agent: str | None = o.get("agent")
        self.address: tuple[str, int] | None = o.get("address")
        self.username: str | None = o.get("username")
        self.password: str | None = o.get("password")
        self.credentials_file = o.get("credentials_file")
        self.datastore: str = o.get("datastore", "running")
        self.timeout = float(o.get("timeout", 30.0))
        self.resolve_target = resolve_target

    def endpoint(self, alarm: Alarm) -> NetconfEndpoint:
        name = render(self.agent, alarm) if self.agent else alarm.agent
        target = target_config(self.resolve_target, name)
        address = self.address or (target.netconf if target is not None else None)
        if address is None:
            raise ActionError(f"no NETCONF address for agent {name!r} (give the action an address, or the target "
                              f"a netconf endpoint)")
        username, password = self.username, self.password
        if username is None:
            from ..config import read_credentials
            if self.credentials_file:
                username, password = read_credentials(self.credentials_file)
            elif target is not None:
                username, password = target.credentials()
        if not username:
            raise ActionError(f"no NETCONF credentials for agent {name!r}")
        return NetconfEndpoint(address[0], address[1], username, password)

    async def run(self, alarm: Alarm) -> str:
        endpoint = self.endpoint(alarm)
        config = render(self.template, alarm, xml=True)
        try:
            await edit_config(endpoint, config, datastore=self.datastore, timeout=self.timeout)
        except NetconfError as exc:
            raise ActionError(str(exc)) from None
        return f"edit-config on {endpoint.host}:{endpoint.port} ({self.datastore}): ok"
