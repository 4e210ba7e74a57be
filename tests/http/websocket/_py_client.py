"""A python3-websockets client for the WebSocket tests: connects with
permessage-deflate offered (the library's default), sends a text, a binary
and a large compressible text message, reads the echoes, closes with 1000,
and prints what it saw as one JSON line."""
import asyncio
import json
import sys

import websockets


async def main(port: int) -> None:
    out = {}
    async with websockets.connect(f"ws://127.0.0.1:{port}/py", max_size=2**24) as ws:
        out["extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        await ws.send("héllo from python")
        out["text"] = await ws.recv()
        await ws.send(bytes([0, 1, 2, 255]))
        out["binary"] = list(await ws.recv())
        big = "compressible " * 20000
        await ws.send(big)
        out["big_ok"] = (await ws.recv()) == big
        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, 10)
        out["pong"] = True
        await ws.close(1000, "bye")
        out["close_code"] = ws.close_code
    print(json.dumps(out))


asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 30))
