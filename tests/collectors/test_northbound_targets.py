"""The collector's northbound gNMI names targets as an agent's own port does (gNMI specification
2.2.2.1: `prefix.target` is a name the client gives its stream, echoed in every response; only a
gateway, which picks one of several agents by it, answers NOT_FOUND for a name it does not serve),
and a Subscribe stream takes one SubscriptionList, as the agents' streams do. One collector
pipeline in process, a real gRPC server on loopback, a real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from qstrata.bindings.paths import xpath_to_gnmi
from qstrata.collectors.model import Update
from qstrata.collectors.outputs.gnmi import GnmiOutput
from qstrata.collectors.pipeline import Pipeline

TOP = "/qstrata-telemetry:telemetry"


def _list(mode: int, sub_mode: int, target: str = "") -> gnmi_pb2.SubscribeRequest:
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        prefix=gnmi_pb2.Path(target=target), mode=mode, encoding=4,
        subscription=[gnmi_pb2.Subscription(path=xpath_to_gnmi(TOP), mode=sub_mode, sample_interval=500_000_000)]))


async def _two_lists(mode: int, sub_mode: int) -> AsyncIterator[gnmi_pb2.SubscribeRequest]:
    yield _list(mode, sub_mode, "zelda")
    await asyncio.sleep(0.2)
    yield _list(mode, sub_mode)
    await asyncio.sleep(10)


def test_targets_are_echoed_and_a_second_subscription_list_is_refused(tmp_path):
    async def main():
        out = GnmiOutput(0, state_dir=tmp_path, insecure=True)
        pipeline = Pipeline([out])
        await pipeline.start()
        try:
            pipeline.ingest([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", "u1", 1),
                             Update("mem-a", "/qstrata-qfs:qfs-node/memories/memory[memory-id='m']/occupancy", 2, 1)])
            cred = json.loads((tmp_path / "credentials.json").read_text())
            md = (("username", cred["username"]), ("password", cred["password"]))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{out.port}") as channel:
                stub = gnmi_pb2_grpc.gNMIStub(channel)
                for _ in range(50):  # the output writes the batch in its own worker
                    get = await stub.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target="zelda"),
                                                             path=[xpath_to_gnmi(TOP)], encoding=4), metadata=md)
                    if get.notification[0].update:
                        break
                    await asyncio.sleep(0.05)
                assert [n.prefix.target for n in get.notification] == ["zelda"]
                assert "memories" in json.loads(get.notification[0].update[0].val.json_ietf_val)

                for mode, sub_mode in ((0, 2), (0, 1), (2, 0)):  # STREAM sample, STREAM on-change, POLL
                    call = stub.Subscribe(_two_lists(mode, sub_mode), metadata=md)
                    got = []
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        async with asyncio.timeout(5):
                            async for response in call:
                                got.append(response)
                    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (mode, sub_mode)
                    assert "one SubscriptionList" in refused.value.details()
                    assert got and all(r.update.prefix.target == "zelda" for r in got if r.HasField("update"))
        finally:
            await pipeline.stop()

    asyncio.run(main())
