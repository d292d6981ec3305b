"""ETSI GS QKD 014 V1.1.1 key delivery checks (clauses cited as "ETSI QKD 014 5.x" for the
methods and "6.x" for the data formats) as data, their steps, and the pure judges of what came
back.

A check that expects an error checks which error: the status code, the Error object (6.5) and
that its message names what was wrong, and a control request, the same without the mistake,
must succeed (else the refusal may be about something else: the caller, the pair, key left)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from .kme_runner import Answer, KmeContext, step
from .model import KME_PROFILE, Check, Evidence, KmeExpect, Outcome, Verdict, register

STATUS_INTS = ("key_size", "stored_key_count", "max_key_count", "max_key_per_request", "max_key_size",
               "min_key_size", "max_SAE_ID_count")
STATUS_STRINGS = ("source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID")
BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
PROBE = "qstrata_conform_probe"
ENC = "enc_keys"


def kme(id: str, clause: str, title: str, step: str, send: str, expect: KmeExpect, **params: Any) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="kme", step=step, send=send, expect=expect,
                 profiles=frozenset({KME_PROFILE}), params=tuple(params.items()))


def refused(about: tuple[str, ...], control: str = "the same request without the mistake",
            codes: tuple[int, ...] = (400,)) -> KmeExpect:
    return KmeExpect(codes, about=about, control=control)


ENC_CONTROL = f"GET {ENC}?number=1&size=<key_size>"
CHECKS = [
    kme("KME-STATUS-001", "ETSI QKD 014 5.2, 6.1", "Get status: the Status object of the pair", "status",
        "GET /api/v1/keys/<slave>/status", KmeExpect(answer="Status")),
    kme("KME-STATUS-002", "ETSI QKD 014 5.2", "status for an SAE that is not its slave: refused",
        "refusal", "GET /api/v1/keys/<unknown SAE>/status",
        refused(("qstrata-conform-nobody",), "the status of the slave", (400, 401)),
        path="qstrata-conform-nobody/status", control="{slave}/status"),
    kme("KME-ENC-001", "ETSI QKD 014 5.3, 6.3", "Get key (GET number, size): a Key container", "enc",
        f"GET /api/v1/keys/<slave>/{ENC}?number=2&size=<key_size>", KmeExpect(answer="Key container"),
        path=f"{{slave}}/{ENC}?number=2&size={{size}}", number=2),
    kme("KME-ENC-002", "ETSI QKD 014 5.3, 6.2, 6.3", "Get key (POST Key request): a Key container", "enc",
        f"POST /api/v1/keys/<slave>/{ENC} {{number: 2, size: <key_size>}}", KmeExpect(answer="Key container"),
        path=f"{{slave}}/{ENC}", body={"number": 2, "size": "{size}"}, number=2),
    kme("KME-ENC-003", "ETSI QKD 014 5.3, 6.2", "Get key, no number or size: 1 key of key_size", "enc",
        f"GET /api/v1/keys/<slave>/{ENC}", KmeExpect(answer="Key container"), path=f"{{slave}}/{ENC}", number=1),
    kme("KME-ENC-004", "ETSI QKD 014 6.2", "an unknown extension_optional is ignored", "enc", f"POST {ENC} {{number: 1, extension_optional: [{{{PROBE}: true}}]}}",
        KmeExpect(answer="Key container"), path=f"{{slave}}/{ENC}",
        body={"number": 1, "extension_optional": [{PROBE: True}]}, number=1),
    kme("KME-ENC-005", "ETSI QKD 014 6.2", "an unsupported extension_mandatory: 400", "refusal", f"POST {ENC} {{number: 1, extension_mandatory: [{{{PROBE}: true}}]}}",
        refused((PROBE,)), path=f"{{slave}}/{ENC}", body={"number": 1, "extension_mandatory": [{PROBE: True}]},
        control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-006", "ETSI QKD 014 5.3", "a size not a multiple of 8: 400",
        "refusal", f"GET {ENC}?size=<key_size + 4>", refused(("size",), ENC_CONTROL),
        path=f"{{slave}}/{ENC}?number=1&size={{odd_size}}", control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-007", "ETSI QKD 014 5.3, 6.1", "a size above max_key_size: 400", "refusal",
        f"GET {ENC}?size=<max_key_size + 8>", refused(("size",), ENC_CONTROL),
        path=f"{{slave}}/{ENC}?number=1&size={{over_size}}", control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-008", "ETSI QKD 014 5.3, 6.1", "a size below min_key_size: 400", "refusal",
        f"GET {ENC}?size=<min_key_size - 8>", refused(("size",), ENC_CONTROL),
        path=f"{{slave}}/{ENC}?number=1&size={{under_size}}", control=f"{{slave}}/{ENC}?number=1&size={{size}}",
        unless="under_size"),
    kme("KME-ENC-009", "ETSI QKD 014 5.3", "number 0: 400", "refusal", f"GET {ENC}?number=0",
        refused(("number",), ENC_CONTROL), path=f"{{slave}}/{ENC}?number=0&size={{size}}",
        control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-010", "ETSI QKD 014 5.3, 6.1", "number above max_key_per_request: 400, not 503", "refusal", f"GET {ENC}?number=<max_key_per_request + 1>",
        refused(("number",), ENC_CONTROL), path=f"{{slave}}/{ENC}?number={{over_number}}&size={{size}}",
        control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-011", "ETSI QKD 014 5.3", "a number that is not an integer: 400", "refusal",
        f"GET {ENC}?number=two", refused(("number",), ENC_CONTROL), path=f"{{slave}}/{ENC}?number=two",
        control=f"{{slave}}/{ENC}?number=1&size={{size}}"),
    kme("KME-ENC-012", "ETSI QKD 014 5.3, 6.2", "a Key request that is not JSON: 400", "refusal",
        f"POST {ENC} '{{\"number\": 1,'", refused(("json",), "the same POST with a whole JSON object"),
        path=f"{{slave}}/{ENC}", raw='{"number": 1,', control=f"{{slave}}/{ENC}", control_body={"number": 1}),
    kme("KME-DEC-001", "ETSI QKD 014 5.4, 6.4, 6.3", "dec_keys (POST) by the slave: the master's keys", "dec", "enc_keys as the master, then POST /api/v1/keys/<master>/dec_keys as the slave",
        KmeExpect(answer="Key container"), method="POST"),
    kme("KME-DEC-002", "ETSI QKD 014 5.4", "dec_keys (GET) by the slave: the master's key",
        "dec", "enc_keys as the master, then GET /api/v1/keys/<master>/dec_keys?key_ID= as the slave",
        KmeExpect(answer="Key container"), method="GET"),
    kme("KME-DEC-003", "ETSI QKD 014 5.4", "a key_ID fetched before, or never: one refusal",
        "dec_again", "dec_keys of a key_ID fetched before; dec_keys of a random UUID",
        KmeExpect((400, 401), control="the first dec_keys of the key_ID")),
    kme("KME-DEC-004", "ETSI QKD 014 5.4", "dec_keys by the master: refused (slave's call)", "dec_master", "enc_keys, then POST /api/v1/keys/<slave>/dec_keys as the master",
        KmeExpect((400, 401), control="the slave's dec_keys of the key")),
    kme("KME-AUTH-001", "ETSI QKD 014 4 (mutual TLS)", "no client certificate: no answer, no key", "no_certificate", "GET /api/v1/keys/<slave>/status without a client certificate",
        KmeExpect((401,), control="the same GET with the SAE's certificate")),
]


# -- judges (pure) -------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def status_problem(body: Any, master: str, slave: str) -> str | None:
    """What is wrong with a Status object (6.1) for the pair, or None."""
    if not isinstance(body, dict):
        return "the answer is not a JSON object"
    missing = [f for f in (*STATUS_STRINGS, *STATUS_INTS) if f not in body]
    if missing:
        return f"Status without {', '.join(missing)}"
    extra = sorted(set(body) - {*STATUS_STRINGS, *STATUS_INTS, "status_extension"})
    if extra:
        return f"Status with fields 6.1 does not define: {', '.join(extra)}"
    if bad := [f for f in STATUS_INTS if not _is_int(body[f]) or body[f] < 0]:
        return f"not a JSON integer >= 0: {', '.join(f'{f}={body[f]!r}' for f in bad)}"
    if bad := [f for f in STATUS_STRINGS if not isinstance(body[f], str) or not body[f]]:
        return f"not a non-empty string: {', '.join(bad)}"
    if (body["master_SAE_ID"], body["slave_SAE_ID"]) != (master, slave):
        return (f"master_SAE_ID/slave_SAE_ID {body['master_SAE_ID']}/{body['slave_SAE_ID']}, expected "
                f"{master}/{slave} (the caller's certificate and the path)")
    if not body["min_key_size"] <= body["key_size"] <= body["max_key_size"]:
        return "key_size outside min_key_size..max_key_size"
    if body["stored_key_count"] > body["max_key_count"]:
        return "stored_key_count above max_key_count"
    return None


def container_problem(body: Any, number: int, size: int) -> str | None:
    """What is wrong with a Key container (6.3) that should hold `number` keys of `size` bits."""
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        return "not a Key container (an object with a keys list)"
    extra = sorted(set(body) - {"keys", "key_container_extension"})
    if extra:
        return f"Key container with fields 6.3 does not define: {', '.join(extra)}"
    keys = body["keys"]
    if len(keys) != number:
        return f"{len(keys)} keys, {number} asked"
    for k in keys:
        if not isinstance(k, dict) or not isinstance(k.get("key_ID"), str) or not isinstance(k.get("key"), str):
            return f"a key without key_ID and key strings: {str(k)[:200]}"
        if sorted(set(k) - {"key_ID", "key_ID_extension", "key", "key_extension"}):
            return f"a key with fields 6.3 does not define: {sorted(k)}"
        try:
            uuid.UUID(k["key_ID"])
        except ValueError:
            return f"key_ID {k['key_ID']!r} is not a UUID"
        if not BASE64.fullmatch(k["key"]):
            return f"key of {k['key_ID']} is not standard padded base64 (RFC 4648 4)"
        length = len(base64.b64decode(k["key"])) * 8
        if length != size:
            return f"key of {k['key_ID']} has {length} bits, {size} asked"
    if len({k["key_ID"] for k in keys}) != len(keys):
        return "a key_ID repeats"
    return None


def error_problem(expect: KmeExpect, answer: Answer) -> str | None:
    """What is wrong with a refusal: its status, its Error object (6.5), its message."""
    if answer.status == 0:
        return f"no HTTP answer: {answer.error}"
    wanted = " or ".join(map(str, expect.codes))
    if answer.status not in expect.codes:
        return f"HTTP {answer.status}, expected {wanted}"
    body = answer.body
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or not body["message"].strip():
        return f"HTTP {answer.status} without an Error object (6.5: a JSON object with a message)"
    if sorted(set(body) - {"message", "details"}):
        return f"an Error object with fields 6.5 does not define: {sorted(set(body) - {'message', 'details'})}"
    details = body.get("details")
    if details is not None and not (isinstance(details, list) and all(isinstance(d, dict) for d in details)):
        return "details is not a list of objects (6.5)"
    if expect.about and not any(a.lower() in body["message"].lower() for a in expect.about):
        return f"the message does not name {' or '.join(expect.about)}: {body['message'][:200]!r}"
    return None


def judge_refusal(expect: KmeExpect, answer: Answer, control: Answer | None) -> Outcome:
    problem = error_problem(expect, answer)
    if problem:
        return Outcome(Verdict.FAIL, problem)
    if control is not None and control.status != 200:
        return Outcome(Verdict.FAIL, f"refused, but the control request was refused too (HTTP {control.status}): "
                                     "the refusal is not about the mistake")
    return Outcome(Verdict.PASS)


# -- steps ---------------------------------------------------------------------------------------


def _values(ctx: KmeContext) -> dict[str, Any]:
    s = ctx.status
    size = ctx.key_size
    return {"slave": ctx.slave, "master": ctx.master, "size": size, "odd_size": size + 4,
            "over_size": s.get("max_key_size", 8192) + 8, "under_size": s.get("min_key_size", 64) - 8,
            "over_number": s.get("max_key_per_request", 1024) + 1}


def _fill(template: Any, values: dict[str, Any]) -> Any:
    """A path or a body with the pair's values in its braces ("{size}" alone: the integer)."""
    if isinstance(template, str):
        whole = re.fullmatch(r"\{(\w+)\}", template)
        return values[whole.group(1)] if whole else template.format_map(values)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


def _needs_status(ctx: KmeContext) -> Outcome | None:
    if not ctx.status:
        return Outcome(Verdict.ERROR, f"no Status object for SAE {ctx.master} and slave {ctx.slave} (see "
                                      "KME-STATUS-001): the pair's limits are unknown")
    return None


@step("status")
async def status(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    answer = await ctx.call("master", "GET", f"{ctx.slave}/status", ev=ev)
    if answer.status != 200:
        return Outcome(Verdict.FAIL, f"HTTP {answer.status} {answer.error or str(answer.body)[:300]}")
    problem = status_problem(answer.body, ctx.master, ctx.slave)
    return Outcome(Verdict.FAIL, problem) if problem else Outcome(Verdict.PASS)


async def _enc(ctx: KmeContext, ev: Evidence, path: str, body: Any = None, note: str = "") -> Answer:
    return await ctx.call("master", "POST" if body is not None else "GET", path, json_body=body, ev=ev, note=note)


@step("enc")
async def enc(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    if problem := _needs_status(ctx):
        return problem
    values = _values(ctx)
    body = _fill(check.param("body"), values)
    answer = await _enc(ctx, ev, _fill(check.param("path"), values), body)
    if answer.status != 200:
        return Outcome(Verdict.FAIL, f"HTTP {answer.status} {answer.error or str(answer.body)[:300]}")
    size = body.get("size", ctx.key_size) if isinstance(body, dict) else ctx.key_size
    problem = container_problem(answer.body, check.param("number"), size)
    return Outcome(Verdict.FAIL, problem) if problem else Outcome(Verdict.PASS)


@step("refusal")
async def refusal(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    if problem := _needs_status(ctx):
        return problem
    values = _values(ctx)
    if check.param("unless") and values[check.param("unless")] < 8:
        return Outcome(Verdict.NOT_APPLICABLE, "min_key_size is 8: no smaller size is a multiple of 8")
    raw = check.param("raw")
    path = _fill(check.param("path"), values)
    body = _fill(check.param("body"), values)
    answer = await ctx.call("master", "POST" if body is not None or raw is not None else "GET", path,
                            json_body=body, raw=raw.encode() if raw else None, ev=ev)
    control_body = _fill(check.param("control_body"), values)
    control = await _enc(ctx, ev, _fill(check.param("control"), values), control_body, " (control)")
    return judge_refusal(check.expect, answer, control)


async def _keys(ctx: KmeContext, ev: Evidence, number: int) -> list[dict[str, str]] | Outcome:
    answer = await _enc(ctx, ev, f"{ctx.slave}/{ENC}?number={number}&size={ctx.key_size}")
    if answer.status != 200 or container_problem(answer.body, number, ctx.key_size):
        return Outcome(Verdict.ERROR, f"enc_keys failed first: HTTP {answer.status} "
                                      f"{answer.error or str(answer.body)[:300]}")
    return answer.body["keys"]


def _no_slave(ctx: KmeContext) -> Outcome | None:
    if "slave" not in ctx.tls:
        return Outcome(Verdict.NOT_APPLICABLE, f"dec_keys is the slave's call: give the certificate of {ctx.slave} "
                                               "(--slave-cert, --slave-key)")
    return None


async def _dec(ctx: KmeContext, ev: Evidence, ids: list[str], method: str = "POST", who: str = "slave",
               note: str = "") -> Answer:
    path = f"{ctx.master if who == 'slave' else ctx.slave}/dec_keys"
    if method == "GET":
        return await ctx.call(who, "GET", path + "?" + "&".join(f"key_ID={i}" for i in ids), ev=ev, note=note)
    return await ctx.call(who, "POST", path, json_body={"key_IDs": [{"key_ID": i} for i in ids]}, ev=ev, note=note)


@step("dec")
async def dec(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    if problem := _needs_status(ctx) or _no_slave(ctx):
        return problem
    keys = await _keys(ctx, ev, 2 if check.param("method") == "POST" else 1)
    if isinstance(keys, Outcome):
        return keys
    answer = await _dec(ctx, ev, [k["key_ID"] for k in keys], check.param("method"))
    if answer.status != 200:
        return Outcome(Verdict.FAIL, f"HTTP {answer.status} {answer.error or str(answer.body)[:300]}")
    if problem := container_problem(answer.body, len(keys), ctx.key_size):
        return Outcome(Verdict.FAIL, problem)
    mine = {k["key_ID"]: base64.b64decode(k["key"]) for k in keys}
    theirs = {k["key_ID"]: base64.b64decode(k["key"]) for k in answer.body["keys"]}
    if theirs != mine:
        return Outcome(Verdict.FAIL, "the slave got other keys (or other key_IDs) than the master")
    return Outcome(Verdict.PASS)


def _shape(answer: Answer, *names: str) -> tuple[int, str]:
    """The status and the message with key_IDs and SAE IDs blanked: two refusals that tell the
    same thing look the same."""
    message = answer.body.get("message", "") if isinstance(answer.body, dict) else answer.text
    message = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<key_ID>", message)
    for name in names:
        message = message.replace(name, "<SAE>")
    return answer.status, message


async def _fresh_key_id(ctx: KmeContext, ev: Evidence) -> list[str] | Outcome:
    """The key_ID of one new key for the pair (its slave's certificate needed to go on)."""
    if problem := _needs_status(ctx) or _no_slave(ctx):
        return problem
    keys = await _keys(ctx, ev, 1)
    return keys if isinstance(keys, Outcome) else [keys[0]["key_ID"]]


@step("dec_again")
async def dec_again(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    ids = await _fresh_key_id(ctx, ev)
    if isinstance(ids, Outcome):
        return ids
    first = await _dec(ctx, ev, ids, note=" (control)")
    again = await _dec(ctx, ev, ids, note=" (again)")
    unknown = await _dec(ctx, ev, [str(uuid.uuid4())], note=" (a key_ID that never existed)")
    for answer in (again, unknown):
        if problem := error_problem(check.expect, answer):
            return Outcome(Verdict.FAIL, problem)
    if first.status != 200:
        return Outcome(Verdict.FAIL, f"the first dec_keys of the key_ID was refused (HTTP {first.status})")
    if _shape(again, ctx.master, ctx.slave) != _shape(unknown, ctx.master, ctx.slave):
        return Outcome(Verdict.FAIL, "a delivered key_ID and one that never existed are refused differently: the "
                                     "answer tells whether a key exists")
    return Outcome(Verdict.PASS)


@step("dec_master")
async def dec_master(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    if ctx.slave == ctx.master:
        return Outcome(Verdict.NOT_APPLICABLE, "the SAE is paired with itself: its dec_keys is the slave's call")
    ids = await _fresh_key_id(ctx, ev)
    if isinstance(ids, Outcome):
        return ids
    answer = await _dec(ctx, ev, ids, who="master", note=" (the master)")
    control = await _dec(ctx, ev, ids, note=" (control: the slave)")
    return judge_refusal(check.expect, answer, control)


@step("no_certificate")
async def no_certificate(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    answer = await ctx.call("none", "GET", f"{ctx.slave}/status", ev=ev)
    control = await ctx.call("master", "GET", f"{ctx.slave}/status", ev=ev, note=" (control)")
    if control.status != 200:
        return Outcome(Verdict.ERROR, f"the control request with the master's certificate answered "
                                      f"{control.status or control.error}: nothing to compare the refusal with")
    if answer.status == 0:
        return Outcome(Verdict.PASS)  # the TLS handshake refused it: nothing was asked, nothing told
    return judge_refusal(check.expect, answer, control)


register(CHECKS)
