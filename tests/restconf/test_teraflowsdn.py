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
            rules.append((f"/interface[{interface['qkdi_id']}]", interface))  # the /interfaces GET of its own
        return endpoints, rules

    def links(self) -> list[tuple[str, dict]]:
        """__links__ (and /network_instances): iterates `qkd_links` as a list; keeps dict items whose
        qkdl_type is bare PHYS or VIRT, as ``/link[qkdl_id]`` rules."""
        found = []
        for link in self.get(NODE + "/qkd_links/").json().get("qkd_links", []):
            if isinstance(link, dict) and link.get("qkdl_type", "Direct") in ("PHYS", "VIRT"):
                found.append((f"/link[{link.get('qkdl_id')}]", link))
        return found

    def link(self, link_id: str) -> dict | None:
        return next((value for key, value in self.links() if key == f"/link[{link_id}]"), None)

    def get_config(self) -> list[tuple[str, object]]:
        """GetConfig([]): every resource key in the driver's order, as the rules TeraFlowSDN stores."""
        endpoints, interfaces = self.endpoints_and_interfaces()
        links = self.links()
        return [*((f"/endpoints/endpoint[{e}]", {"uuid": e}) for e in endpoints), *interfaces, *links, *links,
                *self.apps(), ("__capabilities__", self.capabilities()), ("__node__", self.node())]

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


def service_handler_reads(rules: list[tuple[str, object]], left: str | None, right: str | None
                          ) -> tuple[str, list[object], list[tuple]]:
    """What TeraFlowSDN's QKD service handler (SetEndpoint/DeleteEndpoint) reads from one device's
    rules, with its own indexing: any KeyError here aborts the whole service there. `left` and
    `right`: the TeraFlowSDN endpoint names (device:port) the path enters and leaves by."""
    qkdn_id, interfaces, links = None, [0, 0], []
    for key, value in json.loads(json.dumps(rules)):  # the rules are stored as JSON text
        if key == "__node__":
            qkdn_id = value["qkdn_id"]
        elif key.startswith("/interface"):
            try:
                where = value["qkdi_att_point"]["uuid"]
                if where == left:
                    interfaces[0] = value["qkdi_id"]
                elif where == right:
                    interfaces[1] = value["qkdi_id"]
            except KeyError:  # caught there: the interface is then 0
                pass
        elif key.startswith("/link"):
            links.append((value["uuid"], (value["src_qkdn_id"], value["src_interface_id"]),
                          (value["dst_qkdn_id"], value["dst_interface_id"])))
    return qkdn_id, interfaces, links


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


def test_node_for_the_service_handler(driver, node_id):
    value = driver.node()
    assert value.get("qkdn_id") == node_id, (
        f"the service handler reads value['qkdn_id'] from __node__ and aborts without it: {sorted(value)}")


@pytest.fixture(scope="module")
def physical_link(driver, node_id) -> tuple[str, int, str]:
    """(link id, local interface, remote node) of the one physical link the driver creates: the
    twin's interface serves one enabled link at a time."""
    _, rules = driver.endpoints_and_interfaces()
    qkdi_id = next(v for _, v in rules if "device" in v.get("qkdi_att_point", {}))["qkdi_id"]
    link_id, remote = str(uuid.uuid4()), str(uuid.uuid4())
    r = driver.create_link(link_id, (node_id, qkdi_id), (remote, 7))
    assert r.status_code in HTTP_OK_CODES, r.text
    return link_id, qkdi_id, remote


def test_create_a_physical_link_and_read_it_back(driver, node_id, alice, physical_link):
    link_id, qkdi_id, remote = physical_link
    link = driver.link(link_id)  # the registered driver's read finds it (a PHYS link, bare)
    assert link is not None and link["qkdl_type"] == "PHYS"
    assert link["qkdl_local"] == {"qkdn_id": node_id, "qkdi_id": qkdi_id}
    assert link["qkdl_remote"] == {"qkdn_id": remote, "qkdi_id": 7}
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
    link = driver.link(link_id)
    assert link is not None and link["qkdl_type"] == "VIRT" and link.get("virt_next_hop") == [far]
    assert "virt_prev_hop" not in link


def test_creating_a_link_twice_fails_and_changes_nothing(driver, node_id):
    link_id, far = str(uuid.uuid4()), str(uuid.uuid4())
    assert driver.create_link(link_id, (node_id, 0), (far, 0), next_hops=[far], bandwidth=5).status_code in HTTP_OK_CODES
    again = driver.create_link(link_id, (node_id, 0), (far, 0), next_hops=[far], bandwidth=9)
    assert again.status_code == 409, again.text
    assert driver.link(link_id)["virt_bandwidth"] == 5


def test_the_service_handler_reads_what_the_driver_read(driver, node_id, physical_link):
    """SetEndpoint's first pass over the device's rules: the node id, each interface matched to a
    TeraFlowSDN endpoint by its attachment point, each link's id and ends, none aborting."""
    link_id, qkdi_id, remote = physical_link
    endpoints, interfaces = driver.endpoints_and_interfaces()
    att = next(v for _, v in interfaces if v["qkdi_id"] == qkdi_id)["qkdi_att_point"]
    endpoint = f"{att['device']}:{att['port']}"
    assert endpoint in endpoints
    far = str(uuid.uuid4())
    # a link a strict client made, without interface ids (a virtual one): read too, ends None
    bare_id = str(uuid.uuid4())
    strict = requests.post(driver.root + NODE + "/qkd_links", verify=False, auth=driver.auth, json={
        "etsi-qkd-sdn-node:qkd_link": [{"qkdl_id": bare_id, "qkdl_type": "etsi-qkd-node-types:VIRT",
                                        "qkdl_local": {"qkdn_id": node_id}, "qkdl_remote": {"qkdn_id": far}}]},
        headers={"Content-Type": "application/yang-data+json"})
    assert strict.status_code == 201, strict.text
    qkdn_id, ifs, links = service_handler_reads(driver.get_config(), None, endpoint)
    assert qkdn_id == node_id
    assert ifs == [0, qkdi_id], "the interface is not matched to its TeraFlowSDN endpoint"
    assert (link_id, (node_id, qkdi_id), (remote, 7)) in links
    assert (bare_id, (node_id, None), (far, None)) in links


def test_a_client_naming_the_yang_type_gets_rfc_7951(driver):
    def strict(path: str) -> dict:
        r = requests.get(driver.root + NODE + path, verify=False, auth=driver.auth,
                         headers={"Accept": "application/yang-data+json"})
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/yang-data+json")
        return r.json()

    interfaces = strict("/qkd_interfaces")["etsi-qkd-sdn-node:qkd_interfaces"]["qkd_interface"]
    assert all("uuid" not in i.get("qkdi_att_point", {}) for i in interfaces)
    node = strict("")["etsi-qkd-sdn-node:qkd_node"]  # wrapped, the links in the YANG nesting, nothing added
    links = node["qkd_links"]["qkd_link"]
    assert links and all(not set(link) & {"uuid", "src_qkdn_id", "dst_interface_id"} for link in links)
    assert {link["qkdl_type"] for link in links} <= {"etsi-qkd-node-types:PHYS", "etsi-qkd-node-types:VIRT"}


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
