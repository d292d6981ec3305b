"""RFC 6241 s6 subtree filtering: the RFC's own examples (s6.4), then the corner cases."""

from __future__ import annotations

import time

import pytest
from lxml import etree
from qstrata.agents.netconf.errors import BASE_NS
from qstrata.agents.netconf.subtree import apply_subtree_filter

CFG = "http://example.com/schema/1.2/config"
STATS = "http://example.com/schema/1.2/stats"

# The <users> data model of RFC 6241 s6.4.3, used by most of its examples.
RUNNING = f"""
<data xmlns="{BASE_NS}">
  <top xmlns="{CFG}">
    <users>
      <user>
        <name>root</name>
        <type>superuser</type>
        <full-name>Charlie Root</full-name>
        <company-info><dept>1</dept><id>1</id></company-info>
      </user>
      <user>
        <name>fred</name>
        <type>admin</type>
        <full-name>Fred Flintstone</full-name>
        <company-info><dept>2</dept><id>2</id></company-info>
      </user>
      <user>
        <name>barney</name>
        <type>admin</type>
        <full-name>Barney Rubble</full-name>
        <company-info><dept>2</dept><id>3</id></company-info>
      </user>
    </users>
  </top>
  <top xmlns="{STATS}">
    <interfaces>
      <interface ifName="eth0"><ifInOctets>45621</ifInOctets><ifOutOctets>774344</ifOutOctets></interface>
      <interface ifName="eth1"><ifInOctets>1</ifInOctets><ifOutOctets>2</ifOutOctets></interface>
    </interfaces>
  </top>
</data>
"""


def xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), etree.XMLParser(remove_blank_text=True))


def filter_of(body: str) -> list[etree._Element]:
    return list(xml(f'<filter xmlns="{BASE_NS}" type="subtree">{body}</filter>'))


def canonical(element: etree._Element) -> bytes:
    """Compare trees by content, not by whitespace or prefix spelling."""
    return etree.tostring(element, method="c14n2", strip_text=True)


def check(filter_body: str, expected_data: str, data: str = RUNNING, **kwargs) -> None:
    result = apply_subtree_filter(xml(data), filter_of(filter_body), **kwargs)
    assert canonical(result) == canonical(xml(f'<data xmlns="{BASE_NS}">{expected_data}</data>'))


USER = {
    "root": "<user><name>root</name><type>superuser</type><full-name>Charlie Root</full-name>"
    "<company-info><dept>1</dept><id>1</id></company-info></user>",
    "fred": "<user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name>"
    "<company-info><dept>2</dept><id>2</id></company-info></user>",
    "barney": "<user><name>barney</name><type>admin</type><full-name>Barney Rubble</full-name>"
    "<company-info><dept>2</dept><id>3</id></company-info></user>",
}
ALL_USERS = f'<top xmlns="{CFG}"><users>{USER["root"]}{USER["fred"]}{USER["barney"]}</users></top>'

RFC_EXAMPLES = {
    # s6.4.2: an empty filter selects nothing
    "6.4.2 empty filter": ("", ""),
    # s6.4.3: the whole <users> subtree, and the equivalent <users><user/></users>
    "6.4.3 users subtree": (f'<top xmlns="{CFG}"><users/></top>', ALL_USERS),
    "6.4.3 users/user": (f'<top xmlns="{CFG}"><users><user/></users></top>', ALL_USERS),
    # s6.4.4: all <name> elements
    "6.4.4 all names": (
        f'<top xmlns="{CFG}"><users><user><name/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>root</name></user><user><name>fred</name></user>'
        "<user><name>barney</name></user></users></top>",
    ),
    # s6.4.5: one specific <user> entry
    "6.4.5 one user": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name></user></users></top>',
        f'<top xmlns="{CFG}"><users>{USER["fred"]}</users></top>',
    ),
    # s6.4.6: specific elements from a specific entry
    "6.4.6 elements of one user": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type/><full-name/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type>'
        "<full-name>Fred Flintstone</full-name></user></users></top>",
    ),
    # s6.4.7: multiple subtrees; barney is not a superuser so is left out
    "6.4.7 multiple subtrees": (
        f"""<top xmlns="{CFG}"><users>
              <user><name>root</name><company-info/></user>
              <user><name>fred</name><company-info><id/></company-info></user>
              <user><name>barney</name><type>superuser</type><company-info><dept/></company-info></user>
            </users></top>""",
        f'<top xmlns="{CFG}"><users>'
        "<user><name>root</name><company-info><dept>1</dept><id>1</id></company-info></user>"
        "<user><name>fred</name><company-info><id>2</id></company-info></user>"
        "</users></top>",
    ),
    # s6.4.8: elements with attribute naming
    "6.4.8 attribute match": (
        f'<t:top xmlns:t="{STATS}"><t:interfaces><t:interface ifName="eth0"/></t:interfaces></t:top>',
        f'<top xmlns="{STATS}"><interfaces><interface ifName="eth0"><ifInOctets>45621</ifInOctets>'
        "<ifOutOctets>774344</ifOutOctets></interface></interfaces></top>",
    ),
    # s6.2.1: namespace selection -- only the config <top>, not the stats one
    "6.2.1 namespace selection": (f'<top xmlns="{CFG}"/>', ALL_USERS),
}


@pytest.mark.parametrize(("filter_body", "expected"), RFC_EXAMPLES.values(), ids=RFC_EXAMPLES.keys())
def test_rfc_6241_examples(filter_body: str, expected: str) -> None:
    check(filter_body, expected)


CASES = {
    "no namespace matches any namespace": (
        '<top xmlns=""><interfaces><interface><ifInOctets/></interface></interfaces></top>',
        f'<top xmlns="{STATS}"><interfaces><interface ifName="eth0"><ifInOctets>45621</ifInOctets></interface>'
        '<interface ifName="eth1"><ifInOctets>1</ifInOctets></interface></interfaces></top>',
    ),
    "base namespace inherited from <rpc> matches any namespace": (
        "<top><users><user><name>fred</name><type/></user></users></top>",
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type></user></users></top>',
    ),
    "wrong namespace selects nothing": ('<top xmlns="urn:other"/>', ""),
    "unknown element selects nothing": (f'<top xmlns="{CFG}"><groups/></top>', ""),
    "containment with nothing selected is pruned": (
        f'<top xmlns="{CFG}"><users><user><name>wilma</name></user></users></top>',
        "",
    ),
    "all content matches must hold (AND)": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>superuser</type></user></users></top>',
        "",
    ),
    "two content matches": (
        f'<top xmlns="{CFG}"><users><user><type>admin</type><full-name>Barney Rubble</full-name>'
        "</user></users></top>",
        f'<top xmlns="{CFG}"><users>{USER["barney"]}</users></top>',
    ),
    "content match on a non-key selects several entries": (
        f'<top xmlns="{CFG}"><users><user><type>admin</type><name/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type></user>'
        "<user><name>barney</name><type>admin</type></user></users></top>",
    ),
    "content match whitespace is trimmed": (
        f'<top xmlns="{CFG}"><users><user><name>  fred\n</name><type/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type></user></users></top>',
    ),
    "whitespace-only element is a selection node": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type> </type></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type></user></users></top>',
    ),
    "content match on a container never matches": (
        f'<top xmlns="{CFG}"><users><user><company-info>1</company-info></user></users></top>',
        "",
    ),
    "deep content match inside a containment node": (
        f'<top xmlns="{CFG}"><users><user><company-info><dept>2</dept></company-info></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><company-info><dept>2</dept><id>2</id></company-info></user>'
        "<user><company-info><dept>2</dept><id>3</id></company-info></user></users></top>",
    ),
    "attribute mismatch selects nothing": (
        f'<top xmlns="{STATS}"><interfaces><interface ifName="eth9"/></interfaces></top>',
        "",
    ),
    "missing attribute selects nothing": (
        f'<top xmlns="{CFG}"><users><user ifName="eth0"/></users></top>',
        "",
    ),
    "overlapping subtrees are merged, not duplicated": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type/></user></users></top>'
        f'<top xmlns="{CFG}"><users><user><name>fred</name><full-name/></user>'
        "<user><name>fred</name><type/></user></users></top>",
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type>admin</type>'
        "<full-name>Fred Flintstone</full-name></user></users></top>",
    ),
    "full selection wins over a partial one": (
        f'<top xmlns="{CFG}"><users><user><name>fred</name><type/></user></users></top><top xmlns="{CFG}"/>',
        ALL_USERS,
    ),
    "two top-level trees in document order": (
        f'<top xmlns="{STATS}"><interfaces><interface ifName="eth1"/></interfaces></top>'
        f'<top xmlns="{CFG}"><users><user><name>root</name><type/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>root</name><type>superuser</type></user></users></top>'
        f'<top xmlns="{STATS}"><interfaces><interface ifName="eth1"><ifInOctets>1</ifInOctets>'
        "<ifOutOctets>2</ifOutOctets></interface></interfaces></top>",
    ),
}


@pytest.mark.parametrize(("filter_body", "expected"), CASES.values(), ids=CASES.keys())
def test_filter_cases(filter_body: str, expected: str) -> None:
    check(filter_body, expected)


def user_keys(element: etree._Element) -> tuple[str, ...]:
    return (f"{{{CFG}}}name",) if element.tag == f"{{{CFG}}}user" else ()


def test_keys_of_partly_selected_entries_are_included() -> None:
    check(
        f'<top xmlns="{CFG}"><users><user><company-info><id/></company-info></user></users></top>',
        f'<top xmlns="{CFG}"><users>'
        "<user><name>root</name><company-info><id>1</id></company-info></user>"
        "<user><name>fred</name><company-info><id>2</id></company-info></user>"
        "<user><name>barney</name><company-info><id>3</id></company-info></user></users></top>",
        list_keys=user_keys,
    )
    check(  # the key comes first, in data order, even when selected by content match
        f'<top xmlns="{CFG}"><users><user><type>superuser</type><full-name/></user></users></top>',
        f'<top xmlns="{CFG}"><users><user><name>root</name><type>superuser</type>'
        "<full-name>Charlie Root</full-name></user></users></top>",
        list_keys=user_keys,
    )


def test_input_is_not_modified_and_output_is_detached() -> None:
    data = xml(RUNNING)
    before = etree.tostring(data)
    result = apply_subtree_filter(
        data, filter_of(f'<top xmlns="{CFG}"><users><user><name>fred</name></user></users></top>')
    )
    assert etree.tostring(data) == before
    result[0][0][0].getparent().remove(result[0][0][0])
    assert etree.tostring(data) == before
    assert result.tag == f"{{{BASE_NS}}}data"


def test_comments_in_filter_and_data_are_ignored() -> None:
    data = RUNNING.replace("<users>", "<users><!-- a comment -->")
    check(
        f'<top xmlns="{CFG}"><!-- why --><users><user><name>fred</name><!-- x --></user></users></top>',
        f'<top xmlns="{CFG}"><users>{USER["fred"]}</users></top>',
        data=data,
    )


def test_prefixes_are_preserved_in_output() -> None:
    data = (
        f'<data xmlns="{BASE_NS}"><q:top xmlns:q="urn:q"><q:a><q:b>1</q:b><q:c>2</q:c></q:a></q:top></data>'
    )
    result = apply_subtree_filter(xml(data), filter_of('<top xmlns="urn:q"><a><b/></a></top>'))
    assert etree.tostring(result) == (
        f'<data xmlns="{BASE_NS}"><q:top xmlns:q="urn:q"><q:a><q:b>1</q:b></q:a></q:top></data>'.encode()
    )


# -- scale -----------------------------------------------------------------------------------

N = 10_000


def big_data() -> etree._Element:
    users = "".join(
        f"<user><name>u{i}</name><type>t{i % 3}</type><full-name>User {i}</full-name>"
        f"<company-info><dept>{i % 7}</dept><id>{i}</id></company-info></user>"
        for i in range(N)
    )
    return xml(f'<data xmlns="{BASE_NS}"><top xmlns="{CFG}"><users>{users}</users></top></data>')


@pytest.mark.parametrize(
    ("filter_body", "selected"),
    [
        (f'<top xmlns="{CFG}"><users/></top>', N),
        (f'<top xmlns="{CFG}"><users><user><name/></user></users></top>', N),
        (
            f'<top xmlns="{CFG}"><users><user><type>t1</type><company-info><id/></company-info></user></users></top>',
            N // 3,
        ),
        (f'<top xmlns="{CFG}"><users><user><name>u{N - 1}</name></user></users></top>', 1),
        (  # one filter entry per list entry: must not be entries x filters
            f'<top xmlns="{CFG}"><users>'
            + "".join(
                f"<user><name>u{i}</name><company-info><dept/></company-info></user>" for i in range(0, N, 2)
            )
            + "</users></top>",
            N // 2,
        ),
    ],
    ids=["selection", "containment", "content-match", "single-entry", "many-entries"],
)
def test_ten_thousand_entries_is_linear(filter_body: str, selected: int) -> None:
    data = big_data()
    filters = filter_of(filter_body)
    started = time.perf_counter()
    result = apply_subtree_filter(data, filters, list_keys=user_keys)
    elapsed = time.perf_counter() - started
    users = result.findall(f"{{{CFG}}}top/{{{CFG}}}users/{{{CFG}}}user")
    assert len(users) == selected
    assert all(user.find(f"{{{CFG}}}name") is not None for user in users)
    assert elapsed < 2.0, f"{elapsed:.2f}s"
