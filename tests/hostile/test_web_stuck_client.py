"""A dashboard event stream whose client stops reading: once its queue is full the hub drops
it, and the stream must then end (the page's EventSource reconnects and reloads: a second
``hello``). Before: the dropped stream stayed open, sending only pings, so the page silently
missed every later push and the stream kept its 256 queued notes for as long as the
connection lived."""

from __future__ import annotations

import asyncio

from tokmon.web.app import Hub


async def _scenario() -> tuple[list[bytes], int]:
    hub = Hub()
    stream = hub.stream(ping=0.05)
    hello = await stream.__anext__()  # the client connected
    assert b"hello" in hello
    other = hub.stream(ping=0.05)
    await other.__anext__()  # a second client that keeps reading
    for i in range(300):  # the first client reads nothing meanwhile
        hub.publish([("tokmon/usageChanged", {"seq": i, "sessions": [], "removedSessions": []})])
        await other.__anext__()
    got: list[bytes] = []

    async def drain() -> None:
        async for chunk in stream:
            got.append(chunk)

    try:
        await asyncio.wait_for(drain(), 20)  # the client reads again: the stream must end
    except asyncio.TimeoutError:
        got.append(b"<still open>")
    hub.publish([("tokmon/usageChanged", {"seq": 300, "sessions": [], "removedSessions": []})])
    last = await other.__anext__()  # the reading client still gets every push
    assert b'"seq":300' in last
    await other.aclose()
    return got, len(hub.queues)


def test_a_stuck_stream_is_ended() -> None:
    got, left = asyncio.run(_scenario())
    assert got[-1:] != [b"<still open>"], "the dropped stream was never ended"
    assert left == 0
