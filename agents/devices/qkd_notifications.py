"""ETSI GS QKD 015 notifications and state leaves as JSON-IETF trees (etsi-qkd-sdn-node)."""

from __future__ import annotations

from typing import Any

from .qkd_config import MODULE, TYPES
from .qkd_link import QkdLinkSession
from .yangjson import decimal64, identity, uint32

FINITE_KEY_MODULE = "qstrata-qkd"


def ident(name: str) -> str:
    return identity(TYPES, name)


def skr(session: QkdLinkSession | None) -> int:
    """qkdl_performance/skr: the distilled rate while ACTIVE, else 0 (bit/s, saturating uint32)."""
    return uint32(session.measurement.skr) if session is not None and session.status == "ACTIVE" else 0


def performance(session: QkdLinkSession | None, phys: bool, expected: float) -> dict[str, Any]:
    """qkdl_performance: skr is the distilled secret key rate (bit/s, saturating uint32) while
    ACTIVE; eskr = skr - expected_consumption floored at 0, i.e. what is left for new demand.
    phys_perf QBER is the signal QBER as a fraction (0.011 = 1.1 %)."""
    skr = session.measurement.skr if session is not None and session.status == "ACTIVE" else 0.0
    perf: dict[str, Any] = {
        "expected_consumption": uint32(expected),
        "skr": uint32(skr),
        "eskr": uint32(max(skr - expected, 0.0)),
    }
    if phys:
        qber = session.measurement.qber if session is not None and session.status in ("ACTIVE", "PASSIVE") else 0.0
        perf["phys_perf"] = [{"perf_type": ident("QBER"), "value": decimal64(qber, 3)}]
    return perf


def finite_key(session: QkdLinkSession | None) -> dict[str, Any] | None:
    """qstrata-qkd:finite-key of qkdl_performance, for a link that distils key in blocks: the
    asymptotic rate of the last block's detections (while ACTIVE or PASSIVE, as skr and QBER are
    reported) and the blocks' progress. uint64 and counter64 travel as strings (RFC 7951)."""
    if session is None or session.blocks is None:
        return None
    blocks = session.blocks
    last = session.measurement.block if session.status in ("ACTIVE", "PASSIVE") else None
    return {
        "asymptotic-skr": uint32(last.ideal_rate if last else 0.0),
        "block-size": str(int(blocks.size)),
        "block-fill": str(int(blocks.fill_bits)),
        "blocks": str(blocks.released),
        "last-block-length": str(int(last.length) if last else 0),
    }


def link_down(qkdl_id: str, reason: str) -> dict[str, Any]:
    return {f"{MODULE}:sdqkdn_link_down": {"qkd_link": {"qkdl_id": qkdl_id, "reason": reason}}}


def link_perf_update(qkdl_id: str, perf: dict[str, Any]) -> dict[str, Any]:
    return {f"{MODULE}:sdqkdn_link_perf_update": {"qkd_link": {"qkdl_id": qkdl_id, "performance": perf}}}


def link_overloaded(qkdl_id: str, perf: dict[str, Any]) -> dict[str, Any]:
    trimmed = {k: perf[k] for k in ("expected_consumption", "skr", "eskr")}
    return {f"{MODULE}:sdqkdn_link_overloaded": {"qkd_link": {"qkdl_id": qkdl_id, "performance": trimmed}}}


def interface_down(qkdi_id: int, reason: str) -> dict[str, Any]:
    return {f"{MODULE}:sdqkdn_interface_down": {"qkd_interface": {"qkdi_id": qkdi_id, "reason": reason}}}


def application_disconnected(app_id: str) -> dict[str, Any]:
    return {f"{MODULE}:sdqkdn_application_disconnected": {"qkd_application": {"app_id": app_id}}}


def _report(kind: str, container: str, key: str, key_value: Any, status_leaf: str, status: str,
            message: str, severity: str) -> dict[str, Any]:
    return {
        f"{MODULE}:{kind}": {
            container: {
                key: key_value,
                status_leaf: ident(status),
                "message": message,
                "severity": ident(severity),
            }
        }
    }


def link_alarm(qkdl_id: str, status: str, message: str, severity: str = "MAJOR") -> dict[str, Any]:
    return _report("alarm", "link", "qkdl_id", qkdl_id, "qkdl_status", status, message, severity)


def link_event(qkdl_id: str, status: str, message: str) -> dict[str, Any]:
    return _report("event", "link", "qkdl_id", qkdl_id, "qkdl_status", status, message, "MINOR")


def interface_alarm(qkdi_id: int, status: str, message: str) -> dict[str, Any]:
    return _report("alarm", "interface", "qkdi_id", qkdi_id, "qkdi_status", status, message, "MAJOR")


def application_alarm(app_id: str, status: str, message: str) -> dict[str, Any]:
    return _report("alarm", "application", "app_id", app_id, "app_status", status, message, "MINOR")
