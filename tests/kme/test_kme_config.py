"""The KME's configuration kept from commits' change lists equals the configuration read whole,
after every kind of edit a controller makes (entries added, changed and deleted, a list's
container deleted, the kme container deleted), so only touched entries are ever read again."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from qstrata.agents.kme.config import ConfigReader, KmeConfig
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

SCHEMA = ("etsi-qkd-node-types", "etsi-qkd-sdn-node", "qstrata-ss")
ME, PEER = "d1d1d1d1-0001-4000-8000-00000000000e", "d1d1d1d1-0002-4000-8000-00000000000e"
LINK = "b0b0b0b0-0001-4000-8000-00000000000c"
SESSION = "c0ffee00-1111-4222-8333-444455556666"


def base() -> dict[str, Any]:
    return {
        "etsi-qkd-sdn-node:qkd_node": {
            "qkdn_id": ME,
            "qkd_applications": {"qkd_app": [
                {"app_id": "a1b2c3d4-0001-4000-8000-0000000000a1", "server_app_id": "enc-1",
                 "client_app_id": ["enc-2"], "qstrata-ss:ss-session-id": SESSION}]},
            "qkd_links": {"qkd_link": [{"qkdl_id": LINK, "qkdl_remote": {"qkdn_id": PEER}}]},
        },
        "qstrata-ss:service-stratum": {"kme": {
            "kme-id": ME,
            "saes": {"sae": [{"sae-id": "enc-1", "kme-id": ME}, {"sae-id": "enc-2", "kme-id": PEER}]},
            "forwarding-table": {"route": [{"urn-prefix": f"urn:qkd:kme:{PEER}", "next-hop-kme": PEER}]},
            "sessions": {"session": [{"session-id": SESSION, "rate": "1000", "burst": "512"}]},
        }},
    }


def kme(doc: dict) -> dict:
    return doc["qstrata-ss:service-stratum"]["kme"]


def app(doc: dict) -> dict:
    return doc["etsi-qkd-sdn-node:qkd_node"]["qkd_applications"]["qkd_app"][0]


EDITS = {
    "add an SAE": lambda d: kme(d)["saes"]["sae"].append({"sae-id": "enc-3", "kme-id": PEER}),
    "move an SAE": lambda d: kme(d)["saes"]["sae"][1].update({"kme-id": ME}),
    "delete an SAE": lambda d: kme(d)["saes"]["sae"].pop(1),
    "a client more": lambda d: app(d)["client_app_id"].append("enc-3"),
    "a new server": lambda d: app(d).update({"server_app_id": "enc-9"}),
    "no session": lambda d: app(d).pop("qstrata-ss:ss-session-id"),
    "delete the apps": lambda d: d["etsi-qkd-sdn-node:qkd_node"].pop("qkd_applications"),
    "rate up": lambda d: kme(d)["sessions"]["session"][0].update({"rate": "9000"}),
    "route over the link": lambda d: kme(d)["forwarding-table"]["route"][0].update({"qkd-link": LINK}),
    "delete the table": lambda d: kme(d).pop("forwarding-table"),
    "limits": lambda d: kme(d).update({"limits": {"max-key-size": 4096, "default-key-size": 512}}),
    "link to elsewhere": lambda d: d["etsi-qkd-sdn-node:qkd_node"]["qkd_links"]["qkd_link"][0].update(
        {"qkdl_remote": {"qkdn_id": "d1d1d1d1-0003-4000-8000-00000000000e"}}),
    "another kme-id": lambda d: kme(d).update({"kme-id": "d1d1d1d1-0009-4000-8000-00000000000e"}),
    "delete the kme": lambda d: (d["qstrata-ss:service-stratum"].pop("kme"),
                                 d["etsi-qkd-sdn-node:qkd_node"]["qkd_applications"]["qkd_app"][0].pop(
                                     "qstrata-ss:ss-session-id")),
}


def fields(config: KmeConfig) -> dict:
    return {k: v for k, v in vars(config).items() if not k.startswith("_")}


@pytest.mark.parametrize("edit", EDITS)
def test_kept_from_changes_equals_read_whole(edit: str) -> None:
    schema = get_schema(SCHEMA)
    old_doc = base()
    new_doc = copy.deepcopy(old_doc)
    EDITS[edit](new_doc)
    trees = {"running": DataTree.from_python(old_doc, schema=schema, config_only=True)}
    reader = ConfigReader(lambda: trees["running"])
    config = reader.load()
    assert config.kme_id == ME and config.route_to(PEER) is not None and config.app_for("enc-1", ["enc-2"])
    new = DataTree.from_python(new_doc, schema=schema, config_only=True)
    changes = trees["running"].diff(new)
    trees["running"] = new
    assert reader.update(config, changes) is True
    config.changed()
    assert fields(config) == fields(reader.load())


def test_changes_elsewhere_are_not_read() -> None:
    schema = get_schema(SCHEMA)
    old = DataTree.from_python(base(), schema=schema, config_only=True)
    doc = base()
    doc["etsi-qkd-sdn-node:qkd_node"]["qkdn_location_id"] = "lab"
    doc["etsi-qkd-sdn-node:qkd_node"]["qkd_links"]["qkd_link"][0]["qkdl_enable"] = False
    new = DataTree.from_python(doc, schema=schema, config_only=True)

    def no_read() -> DataTree:
        raise AssertionError("the KME read the configuration for a change that is not its own")

    reader = ConfigReader(no_read)
    assert reader.update(KmeConfig(), old.diff(new)) is False
