"""kill -9 under load: agents of the master's KME, of a trusted node and of the slaves' KME are
killed while SAEs fetch keys as fast as they can (direct alice->bob and relayed
alice->bob->charlie), then restarted on their state. Afterwards: no key_ID was handed to a master
twice, every key a slave got equals its master's, and every key given to a master is still
there for its slave (except a key whose slave's request was cut by the kill: that one is either
handed out, equal, or refused, never different)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time

import aiohttp
import pytest
from kme_net import KmeNetwork, Link, Pair

pytest.importorskip("ncclient")

L1 = "22222222-0000-4000-8000-0000000000ab"
L2 = "22222222-0000-4000-8000-0000000000bc"
SAES = {"sae-a": "alice", "sae-b": "bob", "sae-c": "charlie"}
AB = Pair("bbbbbbbb-0000-4000-8000-0000000000ab", "sae-a", ("sae-b",), "5e551111-0000-4000-8000-0000000000ab",
          rate=10**12, burst=10**12)
AC = Pair("bbbbbbbb-0000-4000-8000-0000000000ac", "sae-a", ("sae-c",), "5e551111-0000-4000-8000-0000000000ac",
          rate=10**12, burst=10**12)
SLAVE_NODE = {"sae-b": "bob", "sae-c": "charlie"}


class Load:
    """Workers fetching keys (enc_keys at alice, then the slave's dec_keys) until stopped."""

    def __init__(self, net: KmeNetwork) -> None:
        self.net = net
        self.master: dict[str, tuple[str, bytes]] = {}
        """key_ID -> (slave, key) as the master got it."""
        self.slave: dict[str, bytes] = {}
        self.cut: set[str] = set()
        """key_IDs whose dec_keys ended without an answer (the slave's agent was killed)."""
        self.duplicates: list[str] = []
        self.unexpected: list[str] = []
        self.stop = asyncio.Event()

    def context(self, node: str, sae: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.net.ca(node)))
        ctx.load_cert_chain(*map(str, self.net.certs[sae]))
        return ctx

    async def worker(self, n: int) -> None:
        slave = ("sae-b", "sae-c")[n % 2]
        node = SLAVE_NODE[slave]
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self.stop.is_set():
                try:
                    async with http.get(f"{self.net.url('alice')}/api/v1/keys/{slave}/enc_keys?number=4&size=256",
                                        ssl=self.context("alice", "sae-a")) as r:
                        body = await r.json()
                        if r.status != 200:
                            await asyncio.sleep(0.05)  # a hop is down: 503
                            continue
                except (aiohttp.ClientError, TimeoutError, OSError):
                    await asyncio.sleep(0.05)
                    continue
                ids = []
                for key in body["keys"]:
                    if key["key_ID"] in self.master:
                        self.duplicates.append(key["key_ID"])
                    self.master[key["key_ID"]] = (slave, base64.b64decode(key["key"]))
                    ids.append(key["key_ID"])
                try:
                    async with http.post(f"{self.net.url(node)}/api/v1/keys/sae-a/dec_keys",
                                         json={"key_IDs": [{"key_ID": i} for i in ids]},
                                         ssl=self.context(node, slave)) as r:
                        got = await r.json()
                        if r.status == 200:
                            self.slave.update({k["key_ID"]: base64.b64decode(k["key"]) for k in got["keys"]})
                        elif r.status == 503:
                            self.cut.update(ids)
                        else:
                            self.unexpected.append(f"dec_keys {r.status}: {got}")
                except (aiohttp.ClientError, TimeoutError, OSError):
                    self.cut.update(ids)

    async def run(self, steps) -> None:
        workers = [asyncio.create_task(self.worker(n)) for n in range(6)]
        try:
            for step in steps:
                await step()
        finally:
            self.stop.set()
            await asyncio.gather(*workers)


def test_kill_9_of_every_agent_under_load_loses_no_key_and_hands_none_out_twice(tmp_path) -> None:
    net = KmeNetwork(tmp_path).start()
    try:
        net.configure([Link(L1, "alice", 1, "bob", 1), Link(L2, "bob", 2, "charlie", 1)], SAES, [AB, AC])
        net.certs = {sae: net.sae(node, sae) for sae, node in SAES.items()}
        time.sleep(2)
        load = Load(net)
        counts: list[int] = []

        def crash(name: str):
            async def step() -> None:
                await asyncio.sleep(1.5)
                counts.append(len(load.master))
                await asyncio.to_thread(net.kill, name)
                await asyncio.sleep(0.3)
                await asyncio.to_thread(net.restart, name)
            return step

        async def settle() -> None:
            await asyncio.sleep(1.5)
            counts.append(len(load.master))

        asyncio.run(load.run([crash("alice"), crash("bob"), crash("charlie"), settle]))
        assert counts == sorted(counts) and counts[-1] > counts[0] > 0, f"keys kept flowing: {counts}"
        assert not load.duplicates, f"key_IDs handed to the master twice: {load.duplicates[:5]}"
        assert not load.unexpected, load.unexpected[:5]
        for key_id, key in load.slave.items():
            assert load.master[key_id][1] == key, "a slave got another key than its master under one key_ID"
        owed = [i for i in load.master if i not in load.slave]
        refused = 0
        for key_id in owed:
            slave, key = load.master[key_id]
            status, body = net.curl(SLAVE_NODE[slave], net.certs[slave], f"/api/v1/keys/sae-a/dec_keys?key_ID={key_id}")
            if status == 200:
                assert base64.b64decode(body["keys"][0]["key"]) == key
            else:
                assert status == 401 and key_id in load.cut, f"a key given to the master is gone: {status} {body}"
                refused += 1

        assert refused <= len(load.cut)
    finally:
        net.stop()
