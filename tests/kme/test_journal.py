"""The KME's journal and registry on their own: a crash at any byte of the journal (the file cut
there, as `kill -9` mid-write leaves it) recovers exactly the records written whole before it,
the next record after recovery lands on a clean line, requests arriving together share one sync,
and a registry replayed from any prefix never owes a key twice nor names two keys by one key_ID."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from qstrata.agents.devices.base import KeyRef
from qstrata.agents.kme import material
from qstrata.agents.kme.journal import Journal, decode, encode
from qstrata.agents.kme.registry import Registry

RECORDS = [{"t": "a", "ids": [f"id-{i}"], "n": i, "text": "x" * (i % 7)} for i in range(12)]


def _boundaries(records: list[dict]) -> list[int]:
    ends, pos = [], 0
    for record in records:
        pos += len(encode(record))
        ends.append(pos)
    return ends


def test_a_journal_cut_at_every_byte_recovers_the_whole_records_before_the_cut(tmp_path: Path) -> None:
    whole = b"".join(encode(r) for r in RECORDS)
    ends = _boundaries(RECORDS)
    path = tmp_path / "kme.journal"
    for cut in range(len(whole) + 1):
        path.write_bytes(whole[:cut])
        journal = Journal(path)
        got = journal.load()
        complete = sum(1 for end in ends if end <= cut)
        assert got == RECORDS[:complete], f"cut at byte {cut}"
        assert path.stat().st_size == (ends[complete - 1] if complete else 0), "the torn tail is cut off"

        async def one_more(journal: Journal = journal, cut: int = cut) -> None:
            await journal.append({"t": "after", "cut": cut})
            await journal.close()

        asyncio.run(one_more())
        again = Journal(path)
        assert again.load() == [*RECORDS[:complete], {"t": "after", "cut": cut}], f"cut at byte {cut}"
        asyncio.run(again.close())


def test_a_corrupted_record_ends_the_sound_part() -> None:
    raw = bytearray(b"".join(encode(r) for r in RECORDS[:3]))
    raw[len(encode(RECORDS[0])) + 12] ^= 0x01  # a bit flip inside the second record
    records, sound = decode(bytes(raw))
    assert records == RECORDS[:1] and sound == len(encode(RECORDS[0]))


def test_requests_arriving_together_share_one_sync(tmp_path: Path) -> None:
    async def main() -> Journal:
        journal = Journal(tmp_path / "kme.journal")
        journal.load()
        await asyncio.gather(*(journal.append({"t": "r", "n": i}) for i in range(200)))
        await journal.close()
        return journal

    journal = asyncio.run(main())
    assert journal.appended == 200
    assert journal.syncs <= 10, f"{journal.syncs} syncs for 200 concurrent records"
    again = Journal(tmp_path / "kme.journal")
    assert sorted(r["n"] for r in again.load()) == list(range(200))


def test_a_rewrite_keeps_what_is_live_and_later_records(tmp_path: Path) -> None:
    """What was durable at the rewrite's turn (record 50 included: its effect is in what the
    registry calls live) is replaced by the live records; what comes after stays."""
    async def main() -> None:
        journal = Journal(tmp_path / "kme.journal")
        journal.load()
        for i in range(50):
            await journal.append({"t": "x", "n": i})
        journal.request_rewrite(lambda: [{"t": "live", "n": 50}])
        await journal.append({"t": "x", "n": 50})
        await journal.append({"t": "x", "n": 51})
        await journal.close()

    asyncio.run(main())
    path = tmp_path / "kme.journal"
    assert Journal(path).load() == [{"t": "live", "n": 50}, {"t": "x", "n": 51}]
    assert not path.with_name("kme.journal.tmp").exists()


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_a_registry_replayed_from_any_prefix_owes_each_key_once_under_its_one_reference(tmp_path: Path) -> None:
    """Assignments, deliveries (one slave of two, then the other), an expiry, a reservation and its
    confirmation: cut after every record and at every byte, replay, compare with what the records
    before the cut say."""
    path = tmp_path / "kme.journal"
    first, second, third = _ids(3), _ids(2), _ids(2)
    refs = {key_id: KeyRef("link-1", "epoch", 32 * i, 32) for i, key_id in enumerate(first)}
    refs |= {key_id: KeyRef("link-1", "epoch", 1000 + 32 * i, 32) for i, key_id in enumerate(second)}

    async def build() -> None:
        registry = Registry(path)
        registry.load()
        await registry.reserve(third, "m", ["s1"], 256, KeyRef("link-0", "e0", 0, 64))
        await registry.assign(first, "m", ["s1", "s2"], 256, KeyRef("link-1", "epoch", 0, 96), None, 4e9)
        await registry.assign(second, "m", ["s1"], 256, KeyRef("link-1", "epoch", 1000, 64), bytes(range(64)), 1.0)
        await registry.confirm(third)
        assert registry.claim(first[:2], "m", "s1") is not None
        await registry.delivered(first[:2], "s1")
        assert registry.claim(first[:1], "m", "s2") is not None
        await registry.delivered(first[:1], "s2")
        await registry.expire(now=2.0)
        await registry.close()

    asyncio.run(build())
    whole = path.read_bytes()
    records, _ = decode(whole)
    assert [r["t"] for r in records] == ["r", "a", "a", "c", "d", "d", "e"]
    for cut in range(len(whole) + 1):
        path.write_bytes(whole[:cut])
        registry = Registry(path)
        registry.load()
        seen = decode(whole[:cut])[0]
        expected: dict[str, set[str]] = {}
        for record in seen:
            if record["t"] == "a":
                expected.update({key_id: set(record["s"]) for key_id in record["ids"]})
            elif record["t"] == "d":
                for key_id in record["ids"]:
                    expected[key_id].discard(record["s"])
                    if not expected[key_id]:
                        del expected[key_id]
            elif record["t"] == "e":
                for key_id in record["ids"]:
                    expected.pop(key_id, None)
        assert {k: o.pending for k, o in registry.owed.items()} == expected, f"cut at byte {cut}"
        for key_id, owed in registry.owed.items():
            assert owed.ref == refs[key_id], "a key_ID names the one key it was given"
        reserved = {i for r in seen if r["t"] == "r" for i in r["ids"]} - {i for r in seen if r["t"] == "c"
                                                                             for i in r["ids"]}
        assert registry.lost_reservations == len(reserved)
        asyncio.run(registry.close())


def test_claims_are_all_or_nothing_and_once(tmp_path: Path) -> None:
    async def main() -> None:
        registry = Registry(tmp_path / "kme.journal")
        registry.load()
        ids = _ids(3)
        await registry.assign(ids, "m", ["s"], 256, KeyRef("l", "e", 0, 96), None, 4e9)
        assert registry.claim([ids[0], str(uuid.uuid4())], "m", "s") is None, "an unknown key_ID refuses all"
        assert registry.claim(ids[:1], "other-master", "s") is None
        assert registry.claim(ids[:1], "m", "other-slave") is None
        assert registry.claim([ids[0], ids[0]], "m", "s") is None, "a key_ID twice in one request"
        owed = registry.claim(ids[:2], "m", "s")
        assert owed is not None and [o.ref for o in owed] == material.split(KeyRef("l", "e", 0, 96), 256)[:2]
        assert registry.claim(ids[:1], "m", "s") is None, "a replay"
        assert list(registry.owed) == ids[2:]
        await registry.close()

    asyncio.run(main())


def test_what_the_kme_acknowledges_is_in_the_file_when_the_call_returns(tmp_path: Path) -> None:
    """A relay is acknowledged to the master's KME, and a slave gets its keys, only after the
    registry call returns: by then its record must be in the file (a `kill -9` one instant later
    loses nothing the page cache holds)."""
    path = tmp_path / "kme.journal"

    async def main() -> None:
        registry = Registry(path)
        registry.load()
        ids = _ids(2)
        await registry.reserve(ids, "m", ["s"], 256, KeyRef("l", "e", 0, 64))
        assert [r["t"] for r in decode(path.read_bytes())[0]] == ["r"]
        await registry.assign(ids, "m", ["s"], 256, KeyRef("l", "e", 0, 64), None, 4e9)
        assert [r["t"] for r in decode(path.read_bytes())[0]] == ["r", "a"]
        assert registry.claim(ids, "m", "s") is not None
        await registry.delivered(ids, "s")
        assert [r["t"] for r in decode(path.read_bytes())[0]] == ["r", "a", "d"]
        await registry.close()

    asyncio.run(main())


def _helper_pid(journal: Journal) -> int:
    assert journal._syncer is not None and journal._syncer.alive, "a busy journal has its sync helper"
    return journal._syncer._process.pid


def test_a_busy_journal_is_synced_by_its_helper_process(tmp_path: Path) -> None:
    """Syncs in quick succession go to the helper process (the event loop never waits for the
    disk); what a caller awaited is in the file when the call returns; the helper follows the
    file through a compaction and ends with the journal."""
    path = tmp_path / "kme.journal"

    async def main() -> int:
        journal = Journal(path)
        journal.load()
        await journal.append({"t": "x", "n": 0})
        await asyncio.gather(*(journal.append({"t": "x", "n": i}) for i in range(1, 50)))
        pid = _helper_pid(journal)
        for i in range(50, 60):
            await journal.append({"t": "x", "n": i})
            assert decode(path.read_bytes())[0][-1] == {"t": "x", "n": i}
        journal.request_rewrite(lambda: [{"t": "live"}])
        await journal.append({"t": "x", "n": 60})
        await asyncio.gather(*(journal.append({"t": "x", "n": i}) for i in range(61, 80)))
        assert _helper_pid(journal) == pid
        assert os.readlink(f"/proc/{pid}/fd/3") == str(path), "the helper syncs the compacted file"
        await journal.close()
        return pid

    pid = asyncio.run(main())
    records = Journal(path).load()
    assert records[0] == {"t": "live"} and sorted(r["n"] for r in records[1:]) == list(range(61, 80))
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline, "the helper ends with its journal"
        time.sleep(0.02)


def test_lone_records_of_two_journals_are_synced_side_by_side_off_the_event_loop(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """Two KMEs of one process (a relayed enc_keys: the master's reservation, the slaves'
    assignment) each append one record and wait for it: the event loop never waits for the disk
    (it serves NETCONF and gNMI too), and the two syncs do not queue one behind the other. The
    disk is made slow in this process; the journals' syncs must not happen here."""
    real = os.fdatasync

    def slow_disk(fd: int) -> None:
        time.sleep(1.0)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow_disk)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        journals = [Journal(tmp_path / name / "kme.journal") for name in ("alice", "bob")]
        for journal in journals:
            journal.load()
        stalls: list[float] = []

        async def ticker() -> None:
            last = loop.time()
            while True:
                await asyncio.sleep(0.01)
                stalls.append(loop.time() - last)
                last = loop.time()

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        await asyncio.gather(*(journal.append({"t": "r", "n": i}) for i, journal in enumerate(journals)))
        ticking.cancel()
        for journal in journals:
            await journal.close()
        return max(stalls)

    assert asyncio.run(main()) < 0.6, "the event loop waited for a sync"
    assert [Journal(tmp_path / name / "kme.journal").load() for name in ("alice", "bob")] == [
        [{"t": "r", "n": 0}], [{"t": "r", "n": 1}]]


def test_when_the_helper_dies_its_syncs_fail_and_the_journal_goes_on(tmp_path: Path) -> None:
    """Nobody knows whether a sync asked of a helper that died happened: those records are
    refused (cut off the file, their callers get the error); the next records are synced anew."""
    path = tmp_path / "kme.journal"

    async def main() -> None:
        journal = Journal(path)
        journal.load()
        await asyncio.gather(*(journal.append({"t": "x", "n": i}) for i in range(10)))
        await asyncio.gather(*(journal.append({"t": "x", "n": i}) for i in range(10, 20)))
        helper = _helper_pid(journal)
        os.kill(helper, signal.SIGSTOP)  # a sync asked of it stays under way ...
        cut = asyncio.gather(*(journal.append({"t": "y", "n": i}) for i in range(5)), return_exceptions=True)
        await asyncio.sleep(0.2)
        assert not cut.done()
        os.kill(helper, signal.SIGKILL)  # ... until it dies
        results = await cut
        assert all(isinstance(r, OSError) for r in results), results
        await asyncio.gather(*(journal.append({"t": "x", "n": i}) for i in range(20, 30)))
        await journal.close()

    asyncio.run(main())
    assert sorted(r["n"] for r in Journal(path).load()) == list(range(30)), "refused records are not in the file"
