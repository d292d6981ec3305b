"""RFC 6241 operations (and RFC 6243, 6022, 5277, 6470, 8525) against a real qkd agent.

One agent serves the whole module; every test leaves running, candidate and startup as it found
them (the `clean` fixture checks that and repairs it, so one failure does not cascade).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from lxml import etree
from ncclient.operations import RaiseMode
from netconf_helpers import call, errors
from polling import wait_until

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
WD_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WD_ATTR_NS = "urn:ietf:params:xml:ns:netconf:default:1.0"  # RFC 6243 s6: the "default" attribute
MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YANGLIB_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NS = {"nc": NC_NS, "q": QKD_NS, "mon": MON_NS, "yl": YANGLIB_NS, "ncn": NCN_NS, "n": NOTIF_NS}
YANG_DIR = Path(__file__).resolve().parents[2] / "yang"


# ---------------------------------------------------------------------------- helpers


def link_xml(qkdl_id: str, extra: str = "", op: str | None = None) -> str:
    attr = f' nc:operation="{op}"' if op else ""
    return f"<qkd_link{attr}><qkdl_id>{qkdl_id}</qkdl_id>{extra}</qkd_link>"


def config(*link_entries: str, node_extra: str = "") -> str:
    return (f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><qkd_node xmlns="{QKD_NS}" xmlns:t="{TYPES_NS}">'
            f"{node_extra}<qkd_links>{''.join(link_entries)}</qkd_links></qkd_node></config>")


def new_id() -> str:
    return str(uuid.uuid4())






def is_ok(reply: etree._Element) -> bool:
    return reply.find("nc:ok", NS) is not None and not errors(reply)


def data_xml(m, source: str = "running") -> str:
    return m.get_config(source=source).data_xml


def link_ids(m, source: str = "running") -> list[str]:
    data = m.get_config(source=source).data_ele
    return data.xpath("//q:qkd_link/q:qkdl_id/text()", namespaces=NS)


def edit_rpc(config_xml: str) -> str:
    return f'<edit-config xmlns="{NC_NS}"><target><running/></target>{config_xml}</edit-config>'


def get_config_rpc(source: str = "running", extra: str = "") -> str:
    return f'<get-config xmlns="{NC_NS}"><source><{source}/></source>{extra}</get-config>'


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "ops", twin=False)


@pytest.fixture(scope="module")
def baseline(node, netconf_connect):
    m = netconf_connect(node)
    try:
        yield {ds: data_xml(m, ds) for ds in ("running", "candidate", "startup")}
    finally:
        m.close_session()


@pytest.fixture(autouse=True)
def clean(node, baseline, netconf_connect):
    """Each test starts from the baseline and must leave it behind."""
    yield
    m = netconf_connect(node)
    try:
        m.raise_mode = RaiseMode.NONE
        m.discard_changes()
        now = {ds: data_xml(m, ds) for ds in ("running", "candidate", "startup")}
        if now != baseline:
            for ds in ("running", "startup"):
                body = etree.fromstring(baseline[ds].encode())
                inner = "".join(etree.tostring(c, encoding="unicode") for c in body)
                call(m, f'<copy-config xmlns="{NC_NS}"><target><{ds}/></target><source><config>{inner}'
                        f"</config></source></copy-config>")
            m.discard_changes()
        assert now == baseline, "the test changed the datastores"
    finally:
        m.close_session()


# ---------------------------------------------------------------------------- hello


def test_hello_capabilities(m, baseline) -> None:
    caps = list(m.server_capabilities)
    for cap in (
        "urn:ietf:params:netconf:base:1.0",
        "urn:ietf:params:netconf:base:1.1",
        "urn:ietf:params:netconf:capability:writable-running:1.0",
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
        "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
        "urn:ietf:params:netconf:capability:validate:1.0",
        "urn:ietf:params:netconf:capability:validate:1.1",
        "urn:ietf:params:netconf:capability:startup:1.0",
        "urn:ietf:params:netconf:capability:xpath:1.0",
        "urn:ietf:params:netconf:capability:notification:1.0",
        "urn:ietf:params:netconf:capability:interleave:1.0",
    ):
        assert cap in caps, cap
    with_defaults = [c for c in caps if c.startswith("urn:ietf:params:netconf:capability:with-defaults:1.0?")]
    assert len(with_defaults) == 1
    params = dict(p.split("=", 1) for p in with_defaults[0].split("?", 1)[1].split("&"))
    assert params["basic-mode"] == "explicit"
    assert set(params["also-supported"].split(",")) == {"report-all", "report-all-tagged", "trim"}

    yanglib = [c for c in caps if c.startswith("urn:ietf:params:netconf:capability:yang-library:1.1?")]
    assert len(yanglib) == 1
    params = dict(p.split("=", 1) for p in yanglib[0].split("?", 1)[1].split("&"))
    assert params["revision"] == "2019-01-04"
    content_id = m.get(filter=("subtree", f'<yang-library xmlns="{YANGLIB_NS}"><content-id/></yang-library>'))
    assert params["content-id"] == content_id.data_ele.findtext("yl:yang-library/yl:content-id", namespaces=NS)

    module_caps = {}
    for cap in caps:
        if "?module=" in cap:
            ns, query = cap.split("?", 1)
            params = dict(p.split("=", 1) for p in query.split("&"))
            module_caps[params["module"]] = (ns, params.get("revision"))
    assert module_caps["etsi-qkd-sdn-node"] == (QKD_NS, "2022-01-30")
    assert module_caps["etsi-qkd-node-types"] == (TYPES_NS, "2022-01-30")
    assert module_caps["ietf-netconf"] == (NC_NS, "2011-06-01")

    # every implemented YANG 1.0 module in the yang-library has its module URI, with revision
    lib = m.get(filter=("subtree", f'<yang-library xmlns="{YANGLIB_NS}"/>')).data_ele
    for module in lib.iterfind("yl:yang-library/yl:module-set/yl:module", NS):
        name = module.findtext("yl:name", namespaces=NS)
        revision = module.findtext("yl:revision", namespaces=NS)
        text = m.get_schema(name).data
        assert f"module {name}" in text
        yang11 = any(line.split() == ["yang-version", "1.1;"] for line in text.splitlines())
        if not yang11 and name != "yang":  # "yang" is libyang's internal metadata module
            assert module_caps.get(name) == (module.findtext("yl:namespace", namespaces=NS), revision), name


# ---------------------------------------------------------------------------- confirmed commit


def test_confirmed_commit_times_out_and_rolls_back(m, baseline) -> None:
    qkdl_id = new_id()
    m.edit_config(target="candidate", config=config(link_xml(qkdl_id)))
    m.commit(confirmed=True, timeout="2")
    committed = time.monotonic()
    # not before the timeout ...
    while time.monotonic() - committed < 1.5:
        assert link_ids(m) == [qkdl_id], "rolled back before the confirm-timeout"
        time.sleep(0.1)
    # ... but soon after it
    assert wait_until(lambda: data_xml(m) == baseline["running"], 3.0)
    assert link_ids(m) == []


def test_confirmed_commit_confirmed_by_a_second_commit(m, baseline) -> None:
    qkdl_id = new_id()
    m.edit_config(target="candidate", config=config(link_xml(qkdl_id)))
    m.commit(confirmed=True, timeout="1")
    m.commit()
    time.sleep(1.5)  # past the confirm-timeout: nothing may roll back now
    assert link_ids(m) == [qkdl_id]
    m.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    assert data_xml(m) == baseline["running"]


def test_confirmed_commit_with_persist_survives_its_session_and_is_confirmed_elsewhere(
        node, m, m2, connect, baseline) -> None:
    qkdl_id = new_id()
    token = f"tok-{uuid.uuid4().hex}"
    m.edit_config(target="candidate", config=config(link_xml(qkdl_id)))
    m.commit(confirmed=True, timeout="30", persist=token)
    m.close_session()
    time.sleep(0.2)
    assert link_ids(m2) == [qkdl_id]  # a persistent confirmed commit outlives its session

    # another session: a wrong persist-id is refused, the right one confirms
    wrong = call(m2, f'<commit xmlns="{NC_NS}"><persist-id>not-{token}</persist-id></commit>')
    assert [e["tag"] for e in errors(wrong)] == ["invalid-value"]
    assert is_ok(call(m2, f'<commit xmlns="{NC_NS}"><persist-id>{token}</persist-id></commit>'))
    # confirmed: nothing is pending any more
    again = call(m2, f'<cancel-commit xmlns="{NC_NS}"><persist-id>{token}</persist-id></cancel-commit>')
    assert errors(again) and errors(again)[0]["tag"] in ("operation-failed", "invalid-value")
    assert link_ids(m2) == [qkdl_id]
    m2.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    assert data_xml(m2) == baseline["running"]


def test_cancel_commit(m, m2, baseline) -> None:
    # same session, no persist
    m.edit_config(target="candidate", config=config(link_xml(new_id())))
    m.commit(confirmed=True, timeout="60")
    assert len(link_ids(m)) == 1
    assert is_ok(call(m, f'<cancel-commit xmlns="{NC_NS}"/>'))
    assert data_xml(m) == baseline["running"]

    # persist: cancelled from another session with the persist-id
    token = f"tok-{uuid.uuid4().hex}"
    m.edit_config(target="candidate", config=config(link_xml(new_id())))
    m.commit(confirmed=True, timeout="60", persist=token)
    assert len(link_ids(m2)) == 1
    assert is_ok(call(m2, f'<cancel-commit xmlns="{NC_NS}"><persist-id>{token}</persist-id></cancel-commit>'))
    assert data_xml(m2) == baseline["running"]

    # nothing pending: cancel-commit is an error
    reply = call(m, f'<cancel-commit xmlns="{NC_NS}"/>')
    assert errors(reply) and errors(reply)[0]["tag"] == "operation-failed"


def test_candidate_follows_running_until_it_is_edited(m, m2, baseline) -> None:
    """A commit must not undo what another session wrote to running since the candidate was last
    committed or discarded (the candidate had no changes of its own)."""
    direct, via_candidate = new_id(), new_id()
    m.edit_config(target="running", config=config(link_xml(direct)))
    assert link_ids(m2, "candidate") == [direct]
    m2.edit_config(target="candidate", config=config(link_xml(via_candidate)))
    m2.commit()
    assert sorted(link_ids(m)) == sorted([direct, via_candidate])
    # the same when the candidate is edited without reading it first
    third = new_id()
    m.edit_config(target="running", config=config(link_xml(third)))
    m2.edit_config(target="candidate", config=config(link_xml(via_candidate, op="delete")))
    m2.commit()
    assert sorted(link_ids(m)) == sorted([direct, third])
    m.edit_config(target="running", config=config(link_xml(direct, op="delete"), link_xml(third, op="delete")))
    assert data_xml(m) == baseline["running"]
    assert data_xml(m2, "candidate") == baseline["candidate"]


def test_unconfirmed_commit_rolls_back_when_its_session_ends(node, m, m2, baseline) -> None:
    m.edit_config(target="candidate", config=config(link_xml(new_id())))
    m.commit(confirmed=True, timeout="60")
    assert len(link_ids(m2)) == 1
    m.close_session()
    assert wait_until(lambda: data_xml(m2) == baseline["running"], 3.0)


# ---------------------------------------------------------------------------- locks


def test_lock_denied_names_the_holder_and_edits_are_in_use(m, m2, baseline) -> None:
    assert is_ok(call(m, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    reply = call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>')
    [err] = errors(reply)
    assert (err["type"], err["tag"]) == ("protocol", "lock-denied")
    assert err["info"]["session-id"] == str(m.session_id)

    reply = call(m2, f'<edit-config xmlns="{NC_NS}"><target><running/></target>'
                     f'{config(link_xml(new_id()))}</edit-config>')
    [err] = errors(reply)
    assert err["tag"] == "in-use"
    assert data_xml(m2) == baseline["running"]
    # the holder may still write
    qkdl_id = new_id()
    m.edit_config(target="running", config=config(link_xml(qkdl_id)))
    m.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    # unlock by someone else is refused; by the holder it works
    assert errors(call(m2, f'<unlock xmlns="{NC_NS}"><target><running/></target></unlock>'))
    assert is_ok(call(m, f'<unlock xmlns="{NC_NS}"><target><running/></target></unlock>'))
    assert is_ok(call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    assert is_ok(call(m2, f'<unlock xmlns="{NC_NS}"><target><running/></target></unlock>'))


def test_lock_is_released_when_the_holder_session_closes(m, m2) -> None:
    assert is_ok(call(m, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    assert errors(call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    m.close_session()
    assert wait_until(lambda: is_ok(call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>')), 3.0)
    assert is_ok(call(m2, f'<unlock xmlns="{NC_NS}"><target><running/></target></unlock>'))


def test_modified_candidate_cannot_be_locked(m, m2, baseline) -> None:
    m.edit_config(target="candidate", config=config(link_xml(new_id())))
    for session in (m2, m):
        reply = call(session, f'<lock xmlns="{NC_NS}"><target><candidate/></target></lock>')
        assert [e["tag"] for e in errors(reply)] == ["lock-denied"]
    m.discard_changes()
    assert data_xml(m, "candidate") == baseline["candidate"]
    assert is_ok(call(m2, f'<lock xmlns="{NC_NS}"><target><candidate/></target></lock>'))
    # a candidate locked by m2 cannot be edited by m
    reply = call(m, f'<edit-config xmlns="{NC_NS}"><target><candidate/></target>'
                    f'{config(link_xml(new_id()))}</edit-config>')
    assert [e["tag"] for e in errors(reply)] == ["in-use"]
    assert is_ok(call(m2, f'<unlock xmlns="{NC_NS}"><target><candidate/></target></unlock>'))


# ---------------------------------------------------------------------------- error-option, test-option


def two_edits(error_option: str, good: str, missing: str) -> str:
    """Edit 1 creates a link; edit 2 deletes one that does not exist (data-missing)."""
    return (f'<edit-config xmlns="{NC_NS}"><target><running/></target><error-option>{error_option}</error-option>'
            + config(link_xml(good), link_xml(missing, op="delete")) + "</edit-config>")


@pytest.mark.parametrize("error_option", ["stop-on-error", "rollback-on-error"])
def test_failing_second_edit_leaves_running_unchanged(m, baseline, error_option) -> None:
    good, missing = new_id(), new_id()
    reply = call(m, two_edits(error_option, good, missing))
    [err] = errors(reply)
    assert err["tag"] == "data-missing"
    assert err["path"] == f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='{missing}']"
    assert data_xml(m) == baseline["running"]


def test_continue_on_error_applies_the_good_edit_and_reports_the_bad(m, baseline) -> None:
    good, missing = new_id(), new_id()
    reply = call(m, two_edits("continue-on-error", good, missing))
    assert reply.find("nc:ok", NS) is None
    [err] = errors(reply)
    assert err["tag"] == "data-missing"
    assert err["path"] == f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='{missing}']"
    assert link_ids(m) == [good]
    m.edit_config(target="running", config=config(link_xml(good, op="delete")))
    assert data_xml(m) == baseline["running"]


def test_test_only_validates_and_changes_nothing(m, baseline) -> None:
    ok = call(m, f'<edit-config xmlns="{NC_NS}"><target><running/></target><test-option>test-only</test-option>'
                 + config(link_xml(new_id(), "<qkdl_type>t:PHYS</qkdl_type><phys_wavelength>1550</phys_wavelength>")) + "</edit-config>")
    assert is_ok(ok)
    assert data_xml(m) == baseline["running"]
    bad = call(m, f'<edit-config xmlns="{NC_NS}"><target><running/></target><test-option>test-only</test-option>'
                  + config(link_xml(new_id(), op="delete")) + "</edit-config>")
    assert [e["tag"] for e in errors(bad)] == ["data-missing"]
    assert data_xml(m) == baseline["running"]
    ok = call(m, f'<edit-config xmlns="{NC_NS}"><target><candidate/></target><test-option>test-only</test-option>'
                 + config(link_xml(new_id())) + "</edit-config>")
    assert is_ok(ok)
    assert data_xml(m, "candidate") == baseline["candidate"]
    # the candidate is not "modified" by a test-only edit: it can still be locked
    assert is_ok(call(m, f'<lock xmlns="{NC_NS}"><target><candidate/></target></lock>'))
    assert is_ok(call(m, f'<unlock xmlns="{NC_NS}"><target><candidate/></target></unlock>'))


def test_delete_and_remove_a_leaf_given_without_value(m, baseline) -> None:
    qkdl_id = new_id()
    m.edit_config(target="running", config=config(link_xml(
        qkdl_id, "<qkdl_enable>false</qkdl_enable><qkdl_type>t:PHYS</qkdl_type>"
                 "<phys_channel_att>2.5</phys_channel_att>")))
    try:
        reply = call(m, f'<edit-config xmlns="{NC_NS}"><target><running/></target>' + config(link_xml(
            qkdl_id, '<qkdl_enable nc:operation="delete"/><phys_channel_att nc:operation="remove"/>'))
            + "</edit-config>")
        assert is_ok(reply), errors(reply)
        link = m.get_config(source="running").data_ele.xpath(f"//q:qkd_link[q:qkdl_id='{qkdl_id}']",
                                                             namespaces=NS)[0]
        assert [etree.QName(c).localname for c in link] == ["qkdl_id", "qkdl_type"]
    finally:
        m.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    assert data_xml(m) == baseline["running"]


# ---------------------------------------------------------------------------- with-defaults


def leaves(data: etree._Element, qkdl_id: str) -> dict[str, tuple[str | None, dict]]:
    """The two leaves with defaults we look at: (text, attributes) or absent."""
    out = {}
    for name, path in (("qkdl_enable", f"q:qkd_node/q:qkd_links/q:qkd_link[q:qkdl_id='{qkdl_id}']/q:qkdl_enable"),
                       ("link_stats_support", "q:qkd_node/q:qkdn_capabilities/q:link_stats_support"),
                       ("application_stats_support", "q:qkd_node/q:qkdn_capabilities/q:application_stats_support")):
        found = data.xpath(path, namespaces=NS)
        if found:
            out[name] = (found[0].text, dict(found[0].attrib))
    return out


def test_with_defaults_modes(m, baseline) -> None:
    qkdl_id = new_id()
    # qkdl_enable is left to its default (true); link_stats_support is set to its default value explicitly
    m.edit_config(target="running", config=config(
        link_xml(qkdl_id), node_extra="<qkdn_capabilities><link_stats_support>true</link_stats_support>"
                                      "</qkdn_capabilities>"))
    try:
        def get(mode: str | None) -> dict:
            extra = f'<with-defaults xmlns="{WD_NS}">{mode}</with-defaults>' if mode else ""
            reply = call(m, get_config_rpc("running", extra))
            assert not errors(reply), errors(reply)
            return leaves(reply.find("nc:data", NS), qkdl_id)

        explicit = {"link_stats_support": ("true", {})}
        assert get(None) == explicit  # basic-mode explicit
        assert get("explicit") == explicit
        assert get("trim") == {}
        assert get("report-all") == {"qkdl_enable": ("true", {}), "link_stats_support": ("true", {}),
                                     "application_stats_support": ("true", {})}
        tagged = get("report-all-tagged")
        default_attr = {f"{{{WD_ATTR_NS}}}default": "true"}
        # RFC 6243 s3.4: every node whose value is the default is tagged, set explicitly or not
        assert tagged == {"qkdl_enable": ("true", default_attr), "link_stats_support": ("true", default_attr),
                          "application_stats_support": ("true", default_attr)}
        # ncclient's own with_defaults support agrees with the raw requests
        assert leaves(m.get_config(source="running", with_defaults="report-all").data_ele, qkdl_id)["qkdl_enable"]

        # an unknown mode is an error, not a silent fallback
        reply = call(m, get_config_rpc("running", f'<with-defaults xmlns="{WD_NS}">everything</with-defaults>'))
        [err] = errors(reply)
        assert err["tag"] == "invalid-value"
        assert reply.find("nc:data", NS) is None
    finally:
        m.edit_config(target="running", config=config(
            link_xml(qkdl_id, op="delete"),
            node_extra='<qkdn_capabilities><link_stats_support nc:operation="delete">true</link_stats_support>'
                       "</qkdn_capabilities>"))
    assert data_xml(m) == baseline["running"]


def test_create_and_delete_of_a_default_the_server_set(m, baseline) -> None:
    """RFC 6243 s2.3.3, basic mode explicit: a leaf the server holds at its schema default was
    not set; `create` of it succeeds (and it is then explicitly set), `delete` of it is
    data-missing and changes nothing."""
    qkdl_id = new_id()
    m.edit_config(target="running", config=config(link_xml(qkdl_id)))
    try:
        created = call(m, edit_rpc(config(link_xml(qkdl_id, '<qkdl_enable nc:operation="create">true</qkdl_enable>'))))
        assert not errors(created), errors(created)
        assert leaves(call(m, get_config_rpc("running")).find("nc:data", NS), qkdl_id)["qkdl_enable"] == ("true", {})
        again = call(m, edit_rpc(config(link_xml(qkdl_id, '<qkdl_enable nc:operation="create">true</qkdl_enable>'))))
        assert [e["tag"] for e in errors(again)] == ["data-exists"]
        before = data_xml(m)
        missing = call(m, edit_rpc(config(node_extra='<qkdn_capabilities><application_stats_support '
                                                      'nc:operation="delete"/></qkdn_capabilities>')))
        assert [e["tag"] for e in errors(missing)] == ["data-missing"], errors(missing)
        assert data_xml(m) == before
    finally:
        m.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    assert data_xml(m) == baseline["running"]


# ---------------------------------------------------------------------------- filters


def test_xpath_and_subtree_filters_select_the_same_data(m, baseline) -> None:
    ids = [new_id() for _ in range(3)]
    m.edit_config(target="running", config=config(*(
        link_xml(i, f"<qkdl_type>t:PHYS</qkdl_type><phys_wavelength>{1300 + n}</phys_wavelength>")
        for n, i in enumerate(ids))))
    try:
        target = ids[1]
        xpath = call(m, get_config_rpc("running", f'<filter type="xpath" xmlns:q="{QKD_NS}" '
                                                   f'select="/q:qkd_node/q:qkd_links/q:qkd_link[q:qkdl_id=\'{target}\']"/>'))
        subtree = call(m, get_config_rpc("running", f'<filter type="subtree"><qkd_node xmlns="{QKD_NS}"><qkd_links>'
                                                     f"<qkd_link><qkdl_id>{target}</qkdl_id></qkd_link>"
                                                     f"</qkd_links></qkd_node></filter>"))
        assert not errors(xpath) and not errors(subtree)
        x, s = xpath.find("nc:data", NS), subtree.find("nc:data", NS)
        assert etree.tostring(x, method="c14n") == etree.tostring(s, method="c14n")
        assert x.xpath("//q:qkdl_id/text()", namespaces=NS) == [target]
        assert x.xpath("//q:phys_wavelength/text()", namespaces=NS) == ["1301"]

        # a leaf selected by both
        xpath = call(m, get_config_rpc("running", f'<filter type="xpath" xmlns:q="{QKD_NS}" select="/q:qkd_node/q:qkdn_id"/>'))
        subtree = call(m, get_config_rpc("running", f'<filter type="subtree"><qkd_node xmlns="{QKD_NS}"><qkdn_id/>'
                                                     f"</qkd_node></filter>"))
        x, s = xpath.find("nc:data", NS), subtree.find("nc:data", NS)
        # exclusive: the subtree answer keeps <qkd_node>'s declaration of the value prefixes its
        # other (unselected) leaves use
        assert etree.tostring(x, method="c14n", exclusive=True) == etree.tostring(s, method="c14n", exclusive=True)
        assert len(x.xpath("//q:qkdn_id", namespaces=NS)) == 1 and not x.xpath("//q:qkd_links", namespaces=NS)

        # a filter that matches nothing gives empty data
        nothing = call(m, get_config_rpc("running", f'<filter type="xpath" xmlns:q="{QKD_NS}" '
                                                     f'select="/q:qkd_node/q:qkd_links/q:qkd_link[q:qkdl_id=\'{new_id()}\']"/>'))
        assert len(nothing.find("nc:data", NS)) == 0
    finally:
        m.edit_config(target="running", config=config(*(link_xml(i, op="delete") for i in ids)))
    assert data_xml(m) == baseline["running"]


# ---------------------------------------------------------------------------- copy/delete-config, validate


def test_copy_config_running_to_startup_and_delete_config_startup(m, baseline) -> None:
    qkdl_id = new_id()
    m.edit_config(target="running", config=config(link_xml(qkdl_id, "<qkdl_type>t:PHYS</qkdl_type><phys_wavelength>1550</phys_wavelength>")))
    try:
        assert data_xml(m, "startup") == baseline["startup"]
        m.copy_config(source="running", target="startup")
        assert data_xml(m, "startup") == data_xml(m, "running")
        assert qkdl_id in link_ids(m, "startup")

        m.delete_config(target="startup")
        assert len(m.get_config(source="startup").data_ele) == 0
        # running cannot be deleted
        reply = call(m, f'<delete-config xmlns="{NC_NS}"><target><running/></target></delete-config>')
        assert errors(reply) and errors(reply)[0]["tag"] in ("operation-not-supported", "invalid-value")
        assert qkdl_id in link_ids(m)
    finally:
        m.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
        m.copy_config(source="running", target="startup")
    assert data_xml(m, "startup") == baseline["startup"]


def test_validate(m, baseline) -> None:
    assert is_ok(call(m, f'<validate xmlns="{NC_NS}"><source><candidate/></source></validate>'))
    assert is_ok(call(m, f'<validate xmlns="{NC_NS}"><source><running/></source></validate>'))
    qkdn_id = m.get_config(source="running").data_ele.findtext("q:qkd_node/q:qkdn_id", namespaces=NS)
    good = (f'<validate xmlns="{NC_NS}"><source><config><qkd_node xmlns="{QKD_NS}"><qkdn_id>{qkdn_id}</qkdn_id>'
            f"<qkd_links>{link_xml(new_id())}</qkd_links></qkd_node></config></source></validate>")
    assert is_ok(call(m, good))
    # a config without the mandatory qkdn_id is not valid
    bad = (f'<validate xmlns="{NC_NS}"><source><config><qkd_node xmlns="{QKD_NS}">'
           f"<qkd_links>{link_xml(new_id())}</qkd_links></qkd_node></config></source></validate>")
    [err] = errors(call(m, bad))
    assert err["tag"] == "missing-element"
    assert err["path"] == "/etsi-qkd-sdn-node:qkd_node/qkdn_id"
    assert data_xml(m) == baseline["running"]


# ---------------------------------------------------------------------------- sessions


def test_kill_session_from_another_session(node, m, m2, baseline) -> None:
    victim = m.session_id
    assert is_ok(call(m, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    # a session cannot kill itself, nor a session that does not exist
    assert errors(call(m2, f'<kill-session xmlns="{NC_NS}"><session-id>{m2.session_id}</session-id></kill-session>'))
    assert errors(call(m2, f'<kill-session xmlns="{NC_NS}"><session-id>999999</session-id></kill-session>'))
    assert is_ok(call(m2, f'<kill-session xmlns="{NC_NS}"><session-id>{victim}</session-id></kill-session>'))
    assert wait_until(lambda: not m.connected, 5.0)
    # its lock went with it, and it is gone from netconf-state
    assert is_ok(call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))
    assert is_ok(call(m2, f'<unlock xmlns="{NC_NS}"><target><running/></target></unlock>'))
    state = m2.get(filter=("subtree", f'<netconf-state xmlns="{MON_NS}"><sessions/></netconf-state>')).data_ele
    assert str(victim) not in state.xpath("//mon:session/mon:session-id/text()", namespaces=NS)


def test_get_schema_returns_the_published_module(m) -> None:
    for name in ("etsi-qkd-sdn-node", "etsi-qkd-node-types"):
        text = m.get_schema(name).data
        assert text == (YANG_DIR / f"{name}.yang").read_text(), name
    reply = call(m, f'<get-schema xmlns="{MON_NS}"><identifier>etsi-qkd-sdn-node</identifier>'
                    f"<version>2022-01-30</version></get-schema>")
    assert reply.findtext("mon:data", namespaces=NS) == (YANG_DIR / "etsi-qkd-sdn-node.yang").read_text()
    for bad in ("<identifier>no-such-module</identifier>",
                "<identifier>etsi-qkd-sdn-node</identifier><version>1999-01-01</version>"):
        reply = call(m, f'<get-schema xmlns="{MON_NS}">{bad}</get-schema>')
        assert [e["tag"] for e in errors(reply)] == ["invalid-value"]


def test_get_shows_netconf_state_and_yang_library(m, m2) -> None:
    data = m.get().data_ele
    sessions = data.xpath("mon:netconf-state/mon:sessions/mon:session", namespaces=NS)
    ids = {s.findtext("mon:session-id", namespaces=NS): s for s in sessions}
    assert {str(m.session_id), str(m2.session_id)} <= set(ids)
    mine = ids[str(m.session_id)]
    assert mine.findtext("mon:username", namespaces=NS) == "admin"
    assert mine.findtext("mon:source-host", namespaces=NS) == "127.0.0.1"
    assert int(mine.findtext("mon:in-rpcs", namespaces=NS)) >= 1
    schemas = {s.findtext("mon:identifier", namespaces=NS): s.findtext("mon:version", namespaces=NS)
               for s in data.xpath("mon:netconf-state/mon:schemas/mon:schema", namespaces=NS)}
    assert schemas["etsi-qkd-sdn-node"] == "2022-01-30"
    datastores = data.xpath("mon:netconf-state/mon:datastores/mon:datastore/mon:name/text()", namespaces=NS)
    assert set(datastores) == {"running", "candidate", "startup"}

    modules = {mod.findtext("yl:name", namespaces=NS): mod.findtext("yl:revision", namespaces=NS)
               for mod in data.xpath("yl:yang-library/yl:module-set/yl:module", namespaces=NS)}
    assert modules["etsi-qkd-sdn-node"] == "2022-01-30"
    assert modules["etsi-qkd-node-types"] == "2022-01-30"
    assert data.xpath("yl:yang-library/yl:content-id/text()", namespaces=NS)
    # the qkd node's configuration is there too
    assert data.xpath("q:qkd_node/q:qkdn_id/text()", namespaces=NS)


def test_subscription_reports_config_changes(m, m2, baseline) -> None:
    m.create_subscription()
    qkdl_id = new_id()
    m2.edit_config(target="running", config=config(link_xml(qkdl_id)))
    try:
        note = m.take_notification(timeout=5)
        assert note is not None, "no netconf-config-change within 5 s"
        root = etree.fromstring(note.notification_xml.encode() if isinstance(note.notification_xml, str)
                                else note.notification_xml)
        assert root.tag == f"{{{NOTIF_NS}}}notification"
        assert root.findtext("n:eventTime", namespaces=NS)
        change = root.find("ncn:netconf-config-change", NS)
        assert change is not None, etree.tostring(root)
        assert change.findtext("ncn:changed-by/ncn:session-id", namespaces=NS) == str(m2.session_id)
        assert change.findtext("ncn:changed-by/ncn:username", namespaces=NS) == "admin"
        assert change.findtext("ncn:datastore", namespaces=NS) == "running"
        targets = [t.text for t in change.iterfind("ncn:edit/ncn:target", NS)]
        assert targets and all(t.startswith("/etsi-qkd-sdn-node:qkd_node") for t in targets)
        # interleave: the subscribed session still answers rpcs
        assert qkdl_id in link_ids(m)
        # a second subscription on the same session is refused
        reply = call(m, f'<create-subscription xmlns="{NOTIF_NS}"/>')
        assert errors(reply)
    finally:
        m2.edit_config(target="running", config=config(link_xml(qkdl_id, op="delete")))
    # the delete is reported too
    note = m.take_notification(timeout=5)
    assert note is not None
    assert "delete" in (note.notification_xml if isinstance(note.notification_xml, str)
                        else note.notification_xml.decode())
    assert data_xml(m) == baseline["running"]
