"""RESTCONF writes inside list entries of every key type the models have, against agent processes
(a switch without its twin, and a QKD node with its twin), in both JSON media.

Keys in a URI are strings (RFC 8040 s3.5.3); the entry a body is parsed in must carry them as
RFC 7951 encodes their type. A uint32 key written as a string made every PUT, PATCH and POST
inside ``optical-switch:port-config/port=13`` fail with ``Invalid non-number-encoded uint32
value "13"`` (the Polatis model keys all its port lists by uint32, ETSI 015 its interfaces). The
codec on every built-in key type: test_restconf_key_types.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from agent_processes import AgentProcess, free_port, restconf_agent

YJ = "application/yang-data+json"
PLAIN = "application/json"
OPSW = "optical-switch"
FIBRE = "qstrata-optical-switch:attached-fibre"
SWITCH_LEAVES = [  # (id, the leaf below /restconf/data, two values, what a DELETE removes at the end)
    ("uint32", f"{OPSW}:port-config/port=13/label", "north", "south", "entry"),
    ("uint32-below-container", f"{OPSW}:port-config/port=14/{FIBRE}/fibre-id", "f1", "f2", "entry"),
    ("uint32-uint32-leaf", f"{OPSW}:cross-connects/pair=1/egress", 2, 3, "entry"),
    ("union-and-uint32", f"{OPSW}:system-config/radius-servers/radius-server=10.0.0.1,1812/secret", "s1", "s2",
     "entry"),
    ("union-ipv6", f"{OPSW}:system-config/ntp-servers/ntp-server=2001%3Adb8%3A%3A1/version", 3, 2, "entry"),
    ("uint32-boolean-leaf", f"{OPSW}:system-config/protocols/protocol=7/enabled", False, True, "entry"),
    ("string-then-uint32", f"{OPSW}:aps/protection-service=svc/working-port=3/client", 4, 5, "entry"),
]
MEDIA = {"strict": YJ, "plain": PLAIN}


class Rc:
    """requests against one agent's RESTCONF, as its admin."""

    def __init__(self, agent: AgentProcess) -> None:
        creds = agent.credentials
        self.url, self.ca, self.auth = creds["restconf"] + "/restconf/data/", creds["ca"], (creds["username"],
                                                                                               creds["password"])

    def __call__(self, method: str, path: str, body: Any = None, media: str = YJ) -> requests.Response:
        headers = {"Accept": media, **({"Content-Type": media} if body is not None else {})}
        return requests.request(method, self.url + path, verify=self.ca, auth=self.auth, timeout=20, headers=headers,
                                data=None if body is None else json.dumps(body))


@pytest.fixture(scope="module")
def switch(agent) -> Rc:
    process = agent("switch", "sw1", twin=False, extra_args=("--restconf-port", str(free_port())))
    deadline = time.monotonic() + 20
    while "restconf" not in process.credentials:
        assert time.monotonic() < deadline, process.log_text()
        time.sleep(0.05)
    return Rc(process)


@pytest.fixture(scope="module")
def qkd(tmp_path_factory: pytest.TempPathFactory):
    with restconf_agent(tmp_path_factory.mktemp("rc-keys") / "alice") as agent:
        yield Rc(agent)


def member(path: str, media: str) -> str:
    """The body's member for the resource at `path`: module-qualified in RFC 7951, bare in plain JSON."""
    names = [segment.split("=")[0] for segment in path.split("?")[0].split("/")]
    module = next(name.split(":")[0] for name in reversed(names) if ":" in name)
    local = names[-1].rpartition(":")[2]
    return local if media == PLAIN else f"{module}:{local}"


def read(rc: Rc, path: str, media: str) -> Any:
    got = rc("GET", path, media=media)
    assert got.status_code == 200, got.text
    return got.json()[member(path, media)]


def put_patch_get_delete(rc: Rc, path: str, first: Any, second: Any, remove: str, media: str) -> None:
    name = member(path, media)
    put = rc("PUT", path, {name: first}, media)
    assert put.status_code in (201, 204), put.text
    assert read(rc, path, media) == first
    patch = rc("PATCH", path, {name: second}, media)
    assert patch.status_code == 204, patch.text
    assert read(rc, path, media) == second
    gone = path if remove == "leaf" else path.rsplit("/", 2 if FIBRE in path else 1)[0]
    deleted = rc("DELETE", gone)
    assert deleted.status_code == 204, deleted.text
    assert rc("GET", gone, media=media).status_code == 404


@pytest.mark.parametrize("media", MEDIA.values(), ids=MEDIA)
@pytest.mark.parametrize(("path", "first", "second", "remove"), [case[1:] for case in SWITCH_LEAVES],
                         ids=[case[0] for case in SWITCH_LEAVES])
def test_a_leaf_in_an_entry_of_the_switch(switch: Rc, path: str, first: Any, second: Any, remove: str,
                                          media: str) -> None:
    put_patch_get_delete(switch, path, first, second, remove, media)


@pytest.mark.parametrize("media", MEDIA.values(), ids=MEDIA)
def test_posts_into_a_uint32_keyed_port(switch: Rc, media: str) -> None:
    """POSTs whose parent is built from ``port=21`` (into its attached fibre: every direct child
    of a port has a default, so it exists already and a POST of it is a 409), and a POST of a
    uint32-keyed entry into a list below a string-keyed one. No list of the models sits below a
    uint32-keyed entry: the codec test has one."""
    port = f"{OPSW}:port-config/port=21"
    put = switch("PUT", port, {member(port, media): [{"port-id": 21}]}, media)
    assert put.status_code == 201, put.text
    fibre = switch("POST", f"{port}/{FIBRE}", {member(f"{port}/{FIBRE}/fibre-id", media): "spool-1"}, media)
    assert fibre.status_code == 201, fibre.text
    assert fibre.headers["Location"].endswith(f"/restconf/data/{port}/{FIBRE}/fibre-id")
    length = switch("POST", f"{port}/{FIBRE}", {member(f"{port}/{FIBRE}/length", media): "2.5"}, media)
    assert length.status_code == 201, length.text
    assert length.headers["Location"].endswith(f"/restconf/data/{port}/{FIBRE}/length")
    assert read(switch, f"{port}/{FIBRE}?content=config", media) == {"fibre-id": "spool-1", "length": "2.5"}
    services = f"{OPSW}:aps"
    name = f"svc-{media.rsplit('+', 1)[-1].rsplit('/', 1)[-1]}"
    made = switch("POST", services, {member(f"{services}/protection-service", media): [{"sname": name}]}, media)
    assert made.status_code == 201, made.text
    service = f"{services}/protection-service={name}"
    working = switch("POST", service, {member(f"{service}/working-port", media): [{"port-id": 21, "client": 22}]},
                     media)
    assert working.status_code == 201, working.text
    assert working.headers["Location"].endswith(f"/{service}/working-port=21")
    assert read(switch, f"{service}/working-port=21/client", media) == 22
    for gone in (service, port):
        assert switch("DELETE", gone).status_code == 204


@pytest.mark.parametrize("media", MEDIA.values(), ids=MEDIA)
def test_a_leaf_in_a_qkd_interface(qkd: Rc, media: str) -> None:
    """ETSI GS QKD 015 keys its interfaces by uint32 (TeraFlowSDN reads them)."""
    node = "etsi-qkd-sdn-node:qkd_node"
    interfaces = read(qkd, f"{node}/qkd_interfaces?content=config", YJ)["qkd_interface"]
    qkdi_id = interfaces[0]["qkdi_id"]
    assert isinstance(qkdi_id, int)
    put_patch_get_delete(qkd, f"{node}/qkd_interfaces/qkd_interface={qkdi_id}/qkdi_model", "m-1", "m-2", "leaf",
                         media)


@pytest.mark.parametrize(("path", "why"), [
    (f"{OPSW}:port-config/port=x/label", "x"),
    (f"{OPSW}:port-config/port=4294967296/label", "4294967296"),
    (f"{OPSW}:system-config/radius-servers/radius-server=10.0.0.1,port/secret", "port"),
])
def test_a_key_its_type_refuses_is_a_clear_400_and_changes_nothing(switch: Rc, path: str, why: str) -> None:
    before = switch("GET", f"{OPSW}:port-config?content=config").text
    refused = switch("PUT", path, {member(path, YJ): "x"})
    assert refused.status_code == 400, refused.text
    (error,) = refused.json()["ietf-restconf:errors"]["error"]
    assert error["error-tag"] == "invalid-value" and why in error["error-message"]
    assert switch("GET", f"{OPSW}:port-config?content=config").text == before


@pytest.mark.parametrize("media", MEDIA.values(), ids=MEDIA.keys())
def test_a_leaf_back_at_its_default_is_read_as_its_default(switch: Rc, media: str) -> None:
    """RFC 8040 s3.5.4: a GET of a leaf that has a default and no value given returns the
    default in use (here the label's "" and the wavelength's 1550.0), not an empty body."""
    label = f"{OPSW}:port-config/port=12/label"
    assert switch("PUT", label, {f"{OPSW}:label": "west"}, media).status_code in (201, 204)
    assert switch("DELETE", label, media=media).status_code == 204
    got = switch("GET", label, media=media)
    assert got.status_code == 200, got.text
    assert list(got.json().values()) == [""], got.text


def test_a_leaf_at_its_default_can_be_created_and_not_deleted(switch: Rc) -> None:
    """RFC 6243 s2.3.3 (basic mode explicit, as RESTCONF's defaults capability says): a leaf the
    server holds at its default was never set, so POST creates it (201, not 409) and DELETE of
    it is 404 (RFC 8040 s4.7; error-tag invalid-value, s7), nothing changed."""
    port, label = f"{OPSW}:port-config/port=11", f"{OPSW}:port-config/port=11/label"
    assert switch("PUT", label, {f"{OPSW}:label": "north"}).status_code in (201, 204)  # the port's entry
    assert switch("DELETE", label).status_code == 204  # the label back at its default
    before = switch("GET", f"{OPSW}:port-config?content=config").text
    missing = switch("DELETE", label)
    assert missing.status_code == 404, missing.text
    assert missing.json()["ietf-restconf:errors"]["error"][0]["error-tag"] == "invalid-value"
    assert switch("GET", f"{OPSW}:port-config?content=config").text == before
    created = switch("POST", port, {f"{OPSW}:label": "east"})
    assert created.status_code == 201, created.text
    assert switch("GET", label).json() == {f"{OPSW}:label": "east"}
    assert switch("POST", port, {f"{OPSW}:label": "west"}).status_code == 409
    assert switch("DELETE", label).status_code == 204
    assert switch("PUT", label, {f"{OPSW}:label": "south"}).status_code == 201  # created, not replaced
    assert switch("PUT", label, {f"{OPSW}:label": "north"}).status_code == 204


def test_a_key_written_otherwise_in_the_uri_names_the_same_entry(switch: Rc) -> None:
    """`port=013` and `"port-id": 13` are the same uint32 (RFC 8040 s4.5: the key values must be
    the same, which is a matter of value, not of text); another value is still refused."""
    entry = {f"{OPSW}:port": [{"port-id": 10, "label": "ten"}]}
    assert switch("PUT", f"{OPSW}:port-config/port=010", entry).status_code in (201, 204)
    assert switch("GET", f"{OPSW}:port-config/port=10/label").json() == {f"{OPSW}:label": "ten"}
    other = switch("PUT", f"{OPSW}:port-config/port=011", entry)
    assert other.status_code == 400 and "differ" in other.text, other.text
    assert switch("GET", f"{OPSW}:port-config/port=10/label").json() == {f"{OPSW}:label": "ten"}
