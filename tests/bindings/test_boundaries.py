"""The layering the design promises, checked on the source: only `bindings/` touches libyang, the
core speaks no protocol, front ends never import each other, and collectors never import device code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agents", "collectors", "scripts")


def _modules(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if "generated" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _attribute_names(path: Path) -> set[str]:
    return {n.attr for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Attribute)}


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_bindings_touches_libyang(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in ("libyang", "_libyang")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: give DataTree/Schema the operation instead"
    assert "_root" not in _attribute_names(path), f"{path.relative_to(ROOT)} reaches into DataTree._root"


@pytest.mark.parametrize("path", _modules("agents/datastore", "agents/access"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_speaks_no_protocol(path: Path) -> None:
    bad = {m for m in _imports(path)
           if m.startswith(("qstrata.agents.netconf", "qstrata.agents.gnmi", "qstrata.agents.restconf", "lxml",
                            "asyncssh", "grpc", "gnmi_pb"))}
    assert not bad, f"{path.relative_to(ROOT)} imports protocol code {bad}"


FRONT_ENDS = ("netconf", "gnmi", "restconf", "kme014")


@pytest.mark.parametrize("front", FRONT_ENDS)
def test_front_ends_do_not_import_each_other(front: str) -> None:
    others = {f"qstrata.agents.{f}" for f in FRONT_ENDS if f != front}
    for path in _modules(f"agents/{front}") if (ROOT / "agents" / front).is_dir() else []:
        bad = {m for m in _imports(path) if any(m == o or m.startswith(o + ".") for o in others)}
        assert not bad, f"{path.relative_to(ROOT)} imports another front end: {bad}"


def test_collectors_and_front_ends_never_import_device_code() -> None:
    """Device events reach them through `agents/events.py`; only the datastore runs driver
    transactions (through the `devices.base` interface)."""
    fronts = [d for d in ("collectors", "agents/netconf", "agents/access", "agents/gnmi", "agents/kme014")
              if (ROOT / d).is_dir()]
    for path in _modules(*fronts):
        bad = {m for m in _imports(path) if m.startswith("qstrata.agents.devices")}
        assert not bad, f"{path.relative_to(ROOT)} imports device code {bad}"
    for path in _modules("agents/datastore"):
        bad = {m for m in _imports(path) if m.startswith("qstrata.agents.devices") and m != "qstrata.agents.devices.base"}
        assert not bad, f"{path.relative_to(ROOT)} imports device code {bad}"


DEVICE_NAMES = frozenset({"driver", "drivers", "read_state", "world", "clock", "settled_ns", "settled_wall_ns",
                          "state_sources"})
"""What reaching around the core to a device looks like: its driver, its state read, a twin's world
or the device's clock (the core's operational read hands out the data and the time it was made)."""


def _names_used(path: Path) -> set[str]:
    """Attribute names, and strings given to getattr/hasattr, in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            found.add(str(node.args[1].value))
    return found


@pytest.mark.parametrize("path", _modules(*(f"agents/{f}" for f in FRONT_ENDS if (ROOT / "agents" / f).is_dir())),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_front_ends_read_through_the_core(path: Path) -> None:
    """A front end reads `Datastore.read_operational` and takes `Datastore.watch_operational`'s
    changes; it never calls a driver, looks at a twin or reads the device's clock."""
    bad = _names_used(path) & DEVICE_NAMES
    assert not bad, f"{path.relative_to(ROOT)} reaches around the core to the device: {sorted(bad)}"


def test_the_boundary_check_sees_a_front_end_reaching_for_the_device(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def now(target):\n    world = getattr(target.driver, 'world', None)\n"
                      "    return world.settled_wall_ns if world else target.datastore.drivers[0].read_state()\n")
    assert _names_used(sneaky) & DEVICE_NAMES == {"driver", "world", "settled_wall_ns", "drivers", "read_state"}


@pytest.mark.parametrize("path", _modules("agents/devices"), ids=lambda p: str(p.relative_to(ROOT)))
def test_device_code_knows_no_agent_around_it(path: Path) -> None:
    """A driver, twin or world service is the device: it never sees the front ends, the datastore,
    the agent assembling it, the testbed or the collectors (a remote driver is a driver like any)."""
    bad = {m for m in _imports(path)
           if m.startswith(("qstrata.agents.netconf", "qstrata.agents.gnmi", "qstrata.agents.restconf",
                            "qstrata.agents.datastore", "qstrata.agents.access", "qstrata.agents.testbed",
                            "qstrata.agents.app", "qstrata.agents.cli", "qstrata.collectors", "grpc", "asyncssh"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("name", ["framing.py", "messages.py"])
def test_the_world_protocol_is_sans_io(name: str) -> None:
    """Frames and messages are pure: the asyncio glue is `remote/aio.py` alone."""
    path = ROOT / "agents" / "devices" / "remote" / name
    bad = {m for m in _imports(path) if m.split(".")[0] in ("asyncio", "socket", "selectors", "ssl", "pickle")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _modules("agents/kme"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_kme_core_speaks_no_protocol(path: Path) -> None:
    """The KME core (ETSI GS QKD 014 semantics) knows no HTTP and no front end; of device code it
    knows only the driver interface (the key capability)."""
    bad = {m for m in _imports(path)
           if m.split(".")[0] in ("aiohttp", "grpc", "asyncssh", "lxml", "gnmi_pb", "ssl", "http")
           or m.startswith(tuple(f"qstrata.agents.{f}" for f in FRONT_ENDS))
           or m.startswith("qstrata.agents.devices") and m != "qstrata.agents.devices.base"}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _modules("agents/kme014"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_014_front_end_uses_only_the_kme_public_api(path: Path) -> None:
    """The front end calls the core's service and errors; never its registry, journal or relay."""
    bad = {m for m in _imports(path) if m.startswith("qstrata.agents.kme.")
           and m not in ("qstrata.agents.kme.service", "qstrata.agents.kme.errors")}
    assert not bad, f"{path.relative_to(ROOT)} reaches into the KME core: {bad}"


@pytest.mark.parametrize("path", _modules("bindings"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bindings_and_the_wire_sit_below_agents_and_collectors(path: Path) -> None:
    """The schema layer and the wire package (`bindings/wire`: framing, safe XML, TLS, gNMI
    encoding, the client side of auth, the NETCONF client) are what agents and clients share:
    they import neither, so neither side reaches sideways into the other for them."""
    bad = {m for m in _imports(path) if m.startswith(("qstrata.agents", "qstrata.collectors"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


HOSTED_GNMI_SERVER = frozenset({
    "qstrata.agents.gnmi.server", "qstrata.agents.gnmi.service", "qstrata.agents.gnmi.auth",
    "qstrata.agents.gnmi.errors", "qstrata.agents.access.users", "qstrata.agents.access.guard",
    "qstrata.agents.access.pki", "qstrata.agents.events",
})
"""What the collectors' northbound output may take from the agents: it serves gNMI itself, so it
hosts the agents' gNMI server with their users, login guard, certificates and event bus."""


@pytest.mark.parametrize("path", _modules("collectors"), ids=lambda p: str(p.relative_to(ROOT)))
def test_collectors_import_no_agent_internals(path: Path) -> None:
    """What agents and collectors both speak (framing, the safe XML parser, TLS, gNMI encoding, the
    client side of auth, the NETCONF client, the event-loop runner) comes from `bindings/wire`;
    of the agents a collector uses only the gNMI server it hosts northbound."""
    bad = {m for m in _imports(path) if m.startswith("qstrata.agents") and m not in HOSTED_GNMI_SERVER}
    assert not bad, f"{path.relative_to(ROOT)} imports agent internals {bad}: take them from qstrata.bindings.wire"


@pytest.mark.parametrize("path", _modules("agents", "collectors", "scripts"), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_the_agent_cli(path: Path) -> None:
    """The command line is the top (importing it went uphill and made a cycle): the event-loop
    runner lives in `bindings/wire/runner.py`."""
    assert "qstrata.agents.cli" not in _imports(path), \
        f"{path.relative_to(ROOT)} imports the agent CLI: use qstrata.bindings.wire.runner"


_HANDLER_MODULES = sorted((ROOT / "agents" / "netconf").glob("rfc*.py"))


@pytest.mark.parametrize("path", _HANDLER_MODULES, ids=lambda p: p.name)
def test_netconf_handlers_use_their_context_not_the_server(path: Path) -> None:
    """Operation handlers get a `HandlerContext` (what they may use); reaching through the session
    to the server (a service locator) hides what each handler depends on."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reaches = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("server", "_server")
               and isinstance(n.value, ast.Name) and n.value.id == "session"]
    assert not reaches, f"{path.name} reaches session.server at lines {reaches}: add what it needs to HandlerContext"


@pytest.mark.parametrize("path", _modules("agents/datastore", "agents/access"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_names_no_protocol_paths(path: Path) -> None:
    """Error paths in a protocol's own modules (the confirmed-commit checks' /ietf-netconf:persist-id)
    are that front end's: the core's errors carry data paths only."""
    assert "/ietf-netconf:" not in path.read_text(encoding="utf-8"), f"{path.relative_to(ROOT)} names a NETCONF path"
