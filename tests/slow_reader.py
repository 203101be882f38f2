"""A viewer that stops reading when the test sends it SIGSTOP. On SIGCONT it reads
what is left and prints how it was closed."""

from __future__ import annotations

import asyncio
import json
import sys

import websockets


async def main(url: str) -> None:
    async with websockets.connect(url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        await ws.recv()
        print("ready", flush=True)
        try:
            async for raw in ws:
                if '"bye"' in raw:
                    print(raw, flush=True)
        except websockets.ConnectionClosed:
            pass
        print(f"closed {ws.close_code}", flush=True)


asyncio.run(main(sys.argv[1]))
