#!/usr/bin/python3
"""Paced request/response against a running middleman: what the idle spin
costs (docs/design.md, "Idle spin"; docs/benchmarks.md, "Change 9").

One requester sends REQ bench.echo at a fixed rate, one service answers each
at once; the script prints the broker's CPU over the window (from
/proc/PID/stat) and the median round trip. Not run in CI. Needs Debian's
python3-websockets. The broker's config must accept the keys below and grant
EREQ on bench.> to clients, for example:

    [[service_keys]]
    name = "s"
    key = "svc-key"
    [[client_keys]]
    name = "c"
    key = "cli-key"
    [[grants]]
    kind = "EREQ"
    pattern = "bench.>"
    [limits]
    max_messages_per_second = 0
    idle_spin_us = 50          # 0 to compare without

Usage: paced_reqres.py ws://127.0.0.1:8765 BROKER_PID RATE SECONDS

The script paces by polling the clock between its own event-loop turns, so it
keeps one core busy; with two cores the broker has the other. Above about
10 000 requests a second the script itself is the limit (its median round
trip grows).
"""
import asyncio
import os
import sys
import time

import websockets


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def req_id(message):
    for line in message.split("\n"):
        if line.lower().startswith("reqid:"):
            return line.split(":", 1)[1].strip()
    return None


async def main(url, pid, rate, seconds):
    service = await websockets.connect(url, compression=None)
    await service.send("svc-key")
    assert await service.recv() == "MM OK"
    await service.send("SUB bench.echo\n\n.\n")
    client = await websockets.connect(url, compression=None)
    await client.send("cli-key")
    assert await client.recv() == "MM OK"
    await asyncio.sleep(0.3)

    async def respond():
        async for frame in service:
            for message in frame.split("\n.\n"):
                if message.startswith("REQ"):
                    await service.send(f"RES bench.echo\nReqID: {req_id(message)}\n\nok\n.\n")

    sent = {}
    round_trips = []

    async def read_answers():
        async for frame in client:
            for message in frame.split("\n.\n"):
                if message.startswith("RES"):
                    round_trips.append(time.perf_counter() - sent.pop(req_id(message)))

    asyncio.ensure_future(respond())
    asyncio.ensure_future(read_answers())
    start = time.perf_counter()
    cpu_before = cpu_seconds(pid)
    k = 0
    while time.perf_counter() - start < seconds:
        while k < (time.perf_counter() - start) * rate:
            sent[str(k)] = time.perf_counter()
            await client.send(f"REQ bench.echo\nReqID: {k}\n\nhello\n.\n")
            k += 1
        await asyncio.sleep(0)
    cores = (cpu_seconds(pid) - cpu_before) / seconds
    round_trips.sort()
    p50 = round_trips[len(round_trips) // 2] * 1e6 if round_trips else float("nan")
    print(f"rate {rate:.0f}/s sent {k} answered {len(round_trips)} broker cores {cores:.2f} p50 {p50:.0f} us")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
