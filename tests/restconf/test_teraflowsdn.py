"""TeraFlowSDN's QKD driver against a qstrata agent, request by request, from our own code.

The driver (TeraFlowSDN src/device/service/drivers/qkd/, the registered QKDDriver2 with Tools2;
every shape is listed in the project's TeraFlowSDN notes and the README's TeraFlowSDN section) is
not installed here: each function below sends exactly what it sends, with the library it uses
(`requests`: ``Accept: */*``, ``verify=False``, HTTP Basic, ``json=`` bodies as plain
``application/json``, URLs ending in ``/``), and reads the answer exactly the way it reads it, so
a shape it cannot read fails here the way it would fail there (mostly silently: no links, no
node id). One agent process with its digital twin (alice) serves the whole module.
"""

from __future__ import annotations

import json
import uuid
import warnings

import pytest
import requests
from agent_processes import AgentProcess, restconf_agent
from lxml import etree
from requests.auth import HTTPBasicAuth

NODE = "/restconf/data/etsi-qkd-sdn-node:qkd_node"
HTTP_OK_CODES = {200, 201, 202, 204}
ETSI_NS = "urn:etsi:qkd:yang:etsi-qkd-node"


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with restconf_agent(tmp_path_factory.mktemp("tfs") / "alice", "--speed", "20") as agent:
        yield agent


class Driver:
    """What TeraFlowSDN's QKD driver puts on the wire and reads back (Tools2), request by request."""

    def __init__(self, root: str, user: str, password: str) -> None:
        self.root = root
        self.auth = HTTPBasicAuth(user, password)
        self.timeout = 120

    def get(self, path: str) -> requests.Response:
        with warnings.catch_warnings():  # verify=False: urllib3 warns on every request
            warnings.simplefilter("ignore")
            r = requests.get(self.root + path, timeout=self.timeout, verify=False, auth=self.auth, headers={})
        r.raise_for_status()
        return r

    def connect(self) -> object:
        """Connect(): 2xx and JSON, kept whole; GetInitialConfig() hands on its `qkd_node` member
        (nothing in TeraFlowSDN reads it further: the service handler reads __node__)."""
        return self.get(NODE).json()

    def endpoints_and_interfaces(self) -> tuple[list[str], list[tuple[str, dict]]]:
        """/endpoints and /interfaces: `qkd_interfaces` holding `qkd_interface` (or the list at the
        top); an endpoint for each interface whose att point has both `device` and `port`."""
        data = self.get(NODE + "/qkd_interfaces/").json()
        if isinstance(data.get("qkd_interfaces"), dict):
            interfaces = data.get("qkd_interfaces", {}).get("qkd_interface", [])
        else:
            interfaces = data.get("qkd_interface", [])
        endpoints, rules = [], []
        for interface in interfaces:
            att = interface.get("qkdi_att_point", {})
            if "device" in att and "port" in att:
                endpoints.append(f"{att['device']}:{att['port']}")
            rules.append((f"/interface[{interface['qkdi_id']}]", interface))
        return endpoints, rules

    def links(self) -> list[tuple[str, dict]]:
        """__links__: iterates `qkd_links`; keeps dict items whose qkdl_type is bare PHYS or VIRT.
        With the YANG nesting our dialect keeps (README, TeraFlowSDN) this finds nothing, silently:
        a list there would reach TeraFlowSDN's service handler, which reads `uuid` and
        `src_qkdn_id` from every /link rule and aborts the service without them."""
        found = []
        for link in self.get(NODE + "/qkd_links/").json().get("qkd_links", []):
            if isinstance(link, dict) and link.get("qkdl_type", "Direct") in ("PHYS", "VIRT"):
                found.append((f"/link[{link.get('qkdl_id')}]", link))
        return found

    def links_nested(self) -> dict[str, dict]:
        """The same GET read in the YANG nesting (the older Tools.py's `qkd_links.qkd_link`)."""
        return {link["qkdl_id"]: link for link in self.get(NODE + "/qkd_links/").json()["qkd_links"]["qkd_link"]}

    def apps(self) -> list[tuple[str, dict]]:
        apps = self.get(NODE + "/qkd_applications/").json().get("qkd_applications", {}).get("qkd_app", [])
        return [(f"/app[{app['app_id']}]", app) for app in apps]

    def capabilities(self) -> object:
        return self.get(NODE + "/qkdn_capabilities/").json()

    def node(self) -> dict:
        """__node__: the body with the four big children popped at its top; the service handler
        then reads `qkdn_id` from what is left."""
        data = self.get(NODE + "/").json()
        for key in ("qkdn_capabilities", "qkd_applications", "qkd_interfaces", "qkd_links"):
            data.pop(key, None)
        return data

    def create_link(self, link_id: str, src: tuple[str, object], dst: tuple[str, object], *,
                    prev_hop: str | None = None, next_hops: list[str] | None = None,
                    bandwidth: int | None = None) -> requests.Response:
        """SetConfig('/link...'): one POST of the `qkd_links` container to the container itself."""
        virtual = bool(prev_hop or next_hops)
        link = {"qkdl_id": link_id, "qkdl_type": "etsi-qkd-node-types:" + ("VIRT" if virtual else "PHYS"),
                "qkdl_local": {"qkdn_id": src[0], "qkdi_id": src[1]},
                "qkdl_remote": {"qkdn_id": dst[0], "qkdi_id": dst[1]}}
        if virtual:
            link |= {"virt_prev_hop": prev_hop, "virt_next_hop": next_hops or [], "virt_bandwidth": bandwidth}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return requests.post(self.root + NODE + "/qkd_links/", json={"qkd_links": {"qkd_link": [link]}},
                                 timeout=self.timeout, verify=False, auth=self.auth, headers={})


@pytest.fixture(scope="module")
def driver(alice):
    creds = alice.credentials
    return Driver(alice.restconf, creds["username"], creds["password"])


@pytest.fixture(scope="module")
def node_id(driver):
    """The node's id as a strict RFC 8040 client reads it."""
    r = requests.get(driver.root + NODE + "/qkdn_id", verify=False, auth=driver.auth,
                     headers={"Accept": "application/yang-data+json"})
    assert r.status_code == 200, r.text
    return str(uuid.UUID(r.json()["etsi-qkd-sdn-node:qkdn_id"]))


def test_connect_gets_json_without_module_prefix(driver, node_id):
    assert isinstance(driver.connect(), dict)
    raw = driver.get(NODE)
    assert raw.headers["Content-Type"].split(";")[0] == "application/json"  # what a client naming no YANG type gets
    assert "etsi-qkd-sdn-node:" not in raw.text  # no prefixes, names or identities


def test_interfaces_give_endpoints(driver):
    endpoints, rules = driver.endpoints_and_interfaces()
    assert rules and endpoints, "no interface, or none with an attachment point: TeraFlowSDN finds no endpoint"
    assert all(":" in e for e in endpoints)
    for _, interface in rules:
        assert isinstance(interface["qkdi_id"], int)  # sent back as is in qkdl_local.qkdi_id (uint32)
        assert not str(interface.get("qkdi_type", "")).startswith("etsi-")  # bare identities


def test_applications_and_capabilities(driver):
    apps = driver.apps()
    assert all(uuid.UUID(value["app_id"]) for _, value in apps)
    caps = driver.capabilities()
    assert isinstance(caps, dict) and caps, caps


@pytest.mark.xfail(strict=True, reason="server: the plain body of GET .../qkd_node/ is wrapped in qkd_node; TeraFlowSDN's "
                   "__node__ pops children at the top and its service handler reads qkdn_id there (rc-status.md)")
def test_node_for_the_service_handler(driver, node_id):
    value = driver.node()
    assert value.get("qkdn_id") == node_id, (
        f"the service handler reads value['qkdn_id'] from __node__ and aborts without it: {sorted(value)}")


def test_create_a_physical_link_and_read_it_back(driver, node_id, alice):
    _, rules = driver.endpoints_and_interfaces()
    qkdi_id = rules[0][1]["qkdi_id"]
    link_id, remote = str(uuid.uuid4()), str(uuid.uuid4())
    r = driver.create_link(link_id, (node_id, qkdi_id), (remote, qkdi_id))
    assert r.status_code in HTTP_OK_CODES, r.text
    assert driver.links() == []  # the registered driver's read: nothing, and no error (see Driver.links)
    link = driver.links_nested()[link_id]
    assert link["qkdl_type"] == "PHYS" and link["qkdl_local"] == {"qkdn_id": node_id, "qkdi_id": qkdi_id}
    # strict RFC 8040 for everyone else: the same link in RFC 7951, and in NETCONF, enabled by default
    strict = requests.get(alice.restconf + NODE + f"/qkd_links/qkd_link={link_id}", verify=False,
                          auth=driver.auth, headers={"Accept": "application/yang-data+json"})
    assert strict.status_code == 200, strict.text
    entry = strict.json()["etsi-qkd-sdn-node:qkd_link"][0]
    assert entry["qkdl_type"] == "etsi-qkd-node-types:PHYS" and entry.get("qkdl_enable", True) is True
    assert link_id in netconf_links(alice)


def test_create_a_virtual_link_with_a_null_previous_hop(driver, node_id):
    link_id, far = str(uuid.uuid4()), str(uuid.uuid4())
    r = driver.create_link(link_id, (node_id, 0), (far, 0), prev_hop=None, next_hops=[far], bandwidth=0)
    assert r.status_code in HTTP_OK_CODES, r.text
    sent = json.loads(r.request.body)["qkd_links"]["qkd_link"][0]
    assert sent["virt_prev_hop"] is None and r.request.headers["Content-Type"] == "application/json"
    link = driver.links_nested().get(link_id)
    assert link is not None and link["qkdl_type"] == "VIRT" and link.get("virt_next_hop") == [far]
    assert "virt_prev_hop" not in link


def test_creating_a_link_twice_fails_and_changes_nothing(driver, node_id):
    link_id, far = str(uuid.uuid4()), str(uuid.uuid4())
    assert driver.create_link(link_id, (node_id, 0), (far, 0), next_hops=[far], bandwidth=5).status_code in HTTP_OK_CODES
    again = driver.create_link(link_id, (node_id, 0), (far, 0), next_hops=[far], bandwidth=9)
    assert again.status_code == 409, again.text
    assert driver.links_nested()[link_id]["virt_bandwidth"] == 5


def test_a_client_naming_the_yang_type_gets_rfc_7951(driver):
    r = requests.get(driver.root + NODE + "/qkd_interfaces", verify=False, auth=driver.auth,
                     headers={"Accept": "application/yang-data+json"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/yang-data+json")
    assert "etsi-qkd-sdn-node:qkd_interfaces" in r.json()


def test_without_credentials_the_driver_is_refused(driver):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = requests.get(driver.root + NODE, verify=False, timeout=10)
    assert r.status_code == 401


def netconf_links(agent: AgentProcess) -> str:
    from ncclient import manager

    creds = agent.credentials
    with manager.connect(host="127.0.0.1", port=agent.port, username=creds["username"], password=creds["password"],
                         hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=20) as m:
        reply = m.get_config("running", filter=("subtree", f'<qkd_node xmlns="{ETSI_NS}"><qkd_links/></qkd_node>'))
    return etree.tostring(etree.fromstring(reply.data_xml.encode()), encoding=str)
