"""A delete is checked for what it can break, and refused with the words whole-tree validation gives.

Deleting one of many QKD links is validated on a slice of running (`bindings/locality.py`): what
the delete can break is looked up instead of re-validating every link. Each refusal here is one
that whole-tree validation gave before: a KME route naming the link (leafref: data-missing,
instance-required, the route's leaf as error-path), a `must` a deleted leaf's default breaks
(operation-failed, must-violation), the twin refusing the delete of an application's backing link,
and NACM; and a `must` outside a slice that looks into it (a route's next-hop-kme against the
KME's kme-id). Each refused edit leaves running exactly as it was. One twin-backed qkd agent (`alice`).
"""

from __future__ import annotations

import uuid

import pytest
from lxml import etree
from netconf_helpers import call, errors
from qstrata.agents.access.users import add_user

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
ETSI = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
SS = "urn:qstrata:yang:qstrata-ss"
KME_ID = str(uuid.UUID(int=77))
ROUTE = "/qstrata-ss:service-stratum/kme/forwarding-table/route[urn-prefix='urn:qkd:bob:']"


def link_id(i: int) -> str:
    return str(uuid.UUID(int=(1 << 64) + i))


def link(i: int) -> str:
    """A VIRT link (alice's twin has key relay on; VIRT links need no interface)."""
    return (f"<qkd_link><qkdl_id>{link_id(i)}</qkdl_id><qkdl_enable>true</qkdl_enable>"
            f"<qkdl_remote><qkdn_id>{uuid.UUID(int=(2 << 64) + i)}</qkdn_id></qkdl_remote>"
            f'<qkdl_type xmlns:t="{TYPES}">t:VIRT</qkdl_type><virt_bandwidth>1000</virt_bandwidth></qkd_link>')


def deleted_link(i: int) -> str:
    return f'<qkd_link nc:operation="delete"><qkdl_id>{link_id(i)}</qkdl_id></qkd_link>'


def route(i: int, operation: str = "") -> str:
    attr = f' nc:operation="{operation}"' if operation else ""
    return (f"<route{attr}><urn-prefix>urn:qkd:bob:</urn-prefix><next-hop-kme>{uuid.UUID(int=78)}</next-hop-kme>"
            f"<qkd-link>{link_id(i)}</qkd-link></route>")


def links(body: str) -> str:
    return f'<qkd_node xmlns="{ETSI}"><qkd_links>{body}</qkd_links></qkd_node>'


def kme(body: str, *, kme_id: str | None = KME_ID) -> str:
    own = f"<kme-id>{kme_id}</kme-id>" if kme_id else ""
    return f'<service-stratum xmlns="{SS}"><kme>{own}{body}</kme></service-stratum>'


def edit(*parts: str) -> str:
    return (f'<edit-config xmlns="{NC}"><target><running/></target>'
            f'<config xmlns:nc="{NC}">{"".join(parts)}</config></edit-config>')


def running(m) -> bytes:
    reply = call(m, f'<get-config xmlns="{NC}"><source><running/></source></get-config>')
    return etree.tostring(reply.find(f"{{{NC}}}data"), method="c14n")


def ok(m, rpc: str) -> None:
    reply = call(m, rpc)
    assert reply.find(f"{{{NC}}}ok") is not None, etree.tostring(reply).decode()


def refused(m, rpc: str) -> dict:
    """The one rpc-error of a refused edit, checking that running did not change."""
    before = running(m)
    errs = errors(call(m, rpc))
    assert len(errs) == 1, errs
    assert running(m) == before
    return errs[0]


@pytest.fixture(scope="module")
def node(agent):
    node = agent("qkd", "alice")  # a default-topology node: its twin is attached
    add_user(node.state_dir, "ruth", "ruth-secret-1", groups=("read-only",))
    return node


@pytest.fixture(scope="module")
def configured(node, netconf_connect):
    """Links 0..9; a KME route naming link 0; an application backed by link 1."""
    m = netconf_connect(node)
    ok(m, edit(links("".join(link(i) for i in range(10)))))
    ok(m, edit(kme(f"<forwarding-table>{route(0)}</forwarding-table>")))
    app = (f"<qkd_app><app_id>{uuid.UUID(int=(3 << 64) + 1)}</app_id>"
           f'<app_type xmlns:t="{TYPES}">t:CLIENT</app_type><app_qos><min_bandwidth>100</min_bandwidth></app_qos>'
           f"<backing_qkdl_id>{link_id(1)}</backing_qkdl_id></qkd_app>")
    ok(m, edit(f'<qkd_node xmlns="{ETSI}"><qkd_applications>{app}</qkd_applications></qkd_node>'))
    m.close_session()
    return node


def test_deleting_a_link_a_route_names_is_refused_as_data_missing_at_the_route(configured, connect) -> None:
    m = connect(configured)
    err = refused(m, edit(links(deleted_link(0))))
    assert (err["tag"], err["app_tag"]) == ("data-missing", "instance-required")
    assert err["path"] == f"{ROUTE}/qkd-link"
    assert err["message"] == (f'Invalid leafref value "{link_id(0)}" - no target instance '
                              '"/etsi-qkdn:qkd_node/etsi-qkdn:qkd_links/etsi-qkdn:qkd_link/etsi-qkdn:qkdl_id" '
                              "with the same value.")
    # gNMI and RESTCONF share this write path; the same delete with the route gone is accepted
    ok(m, edit(links(deleted_link(2))))
    assert f"<qkdl_id>{link_id(2)}</qkdl_id>".encode() not in running(m)


def test_a_kme_id_a_route_points_back_to_is_refused_as_must_violation(configured, connect) -> None:
    """A route's `must` looks at the KME's kme-id from outside a slice of kme-id: main accepted
    the change and left running invalid; a condition that may see a unit keeps it whole."""
    m = connect(configured)
    err = refused(m, edit(kme("", kme_id=str(uuid.UUID(int=78)))))
    assert (err["tag"], err["app_tag"]) == ("operation-failed", "must-violation")
    assert err["path"] == f"{ROUTE}/next-hop-kme"


def test_an_application_and_its_session_in_one_edit(configured, connect) -> None:
    """Both sides on slices, while running still holds what the edit deletes: creating an
    application that names a session the same edit deletes is refused; deleting both together
    is accepted (the application in running is the one the edit deletes)."""
    m = connect(configured)
    session = str(uuid.UUID(int=0x5E5))
    sessions = f"<sessions><session><session-id>{session}</session-id><rate>1000</rate><burst>8000</burst></session></sessions>"
    ok(m, edit(kme(sessions)))
    app_id = str(uuid.UUID(int=(3 << 64) + 9))
    app = (f'<qkd_app><app_id>{app_id}</app_id><ss-session-id xmlns="{SS}">{session}</ss-session-id></qkd_app>')
    gone = sessions.replace("<session>", '<session nc:operation="delete">').replace("<rate>1000</rate><burst>8000</burst>", "")
    err = refused(m, edit(kme(gone, kme_id=None), f'<qkd_node xmlns="{ETSI}"><qkd_applications>{app}</qkd_applications></qkd_node>'))
    assert (err["tag"], err["app_tag"]) == ("data-missing", "instance-required")
    assert err["path"] == f"/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app[app_id='{app_id}']/qstrata-ss:ss-session-id"
    ok(m, edit(f'<qkd_node xmlns="{ETSI}"><qkd_applications>{app}</qkd_applications></qkd_node>'))
    assert errors(call(m, edit(kme(gone, kme_id=None))))[0]["tag"] == "data-missing"
    ok(m, edit(kme(gone, kme_id=None), f'<qkd_node xmlns="{ETSI}"><qkd_applications><qkd_app nc:operation="delete">'
               f"<app_id>{app_id}</app_id></qkd_app></qkd_applications></qkd_node>"))
    assert session.encode() not in running(m) and app_id.encode() not in running(m)


def test_a_link_and_the_route_naming_it_deleted_together_are_accepted(configured, connect) -> None:
    m = connect(configured)
    ok(m, edit(kme(f"<forwarding-table>{route(4)}</forwarding-table>")))  # the route names link 4 now
    ok(m, edit(links(deleted_link(0))))
    ok(m, edit(links(deleted_link(4)), kme(f'<forwarding-table>{route(4, "delete")}</forwarding-table>')))
    data = running(m)
    assert f"<qkdl_id>{link_id(4)}</qkdl_id>".encode() not in data and b"urn:qkd:bob:" not in data


def test_deleting_a_leaf_whose_default_breaks_a_must_is_refused_as_must_violation(configured, connect) -> None:
    m = connect(configured)
    ok(m, edit(kme("<limits><default-key-size>16384</default-key-size><max-key-size>16384</max-key-size></limits>")))
    err = refused(m, edit(kme('<limits><max-key-size nc:operation="delete"/></limits>')))
    assert (err["tag"], err["app_tag"]) == ("operation-failed", "must-violation")
    assert err["path"] == "/qstrata-ss:service-stratum/kme/limits"
    assert err["message"] == "default-key-size is outside min-key-size..max-key-size."


def test_the_twin_refuses_deleting_an_applications_backing_link(configured, connect) -> None:
    m = connect(configured)
    err = refused(m, edit(links(deleted_link(1))))
    assert err["tag"] == "operation-failed"
    assert err["path"] == (f"/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app[app_id='{uuid.UUID(int=(3 << 64) + 1)}']"
                           "/backing_qkdl_id")
    assert link_id(1) in err["message"]


def test_nacm_refuses_a_read_only_users_delete(configured, connect) -> None:
    err = refused(connect(configured, "ruth", "ruth-secret-1"), edit(links(deleted_link(5))))
    assert err["tag"] == "access-denied"
