"""Twins in a world service, driven from agent processes (`qstrata up --processes`).

    framing.py   sans-IO: length-prefixed JSON frames, and the sender's coalescing outbox
    messages.py  pure: DeviceDriver's vocabulary as JSON, the requests and pushes
    aio.py       the asyncio glue: a framed connection over a Unix socket, both ends
    service.py   the world service (one World, every node's twin), `python -m` entry point
    client.py    RemoteDriver (an agent's DeviceDriver) and RemotePlant (the scenario's)
"""
