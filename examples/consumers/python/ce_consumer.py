"""Reads udl's sanitized change events from NATS JetStream and prints one line per event.

    python ce_consumer.py [--durable NAME] [--follow COUNT]

Connects to UDL_NATS_URL (default nats://127.0.0.1:4222), reads the stream UDL_NATS_STREAM
(default UDL_CE) from its first event up to the last one present at start, acknowledges each,
and prints `<id> <type> <subject>`. With `--follow COUNT` it is pushed events as they are
published until it has COUNT, and also prints when each arrived (Unix microseconds), as a live
service would consume. With a durable consumer name it resumes where it left off after a
restart. Each event is a CloudEvents 1.0 JSON document whose id is also its Nats-Msg-Id: the
stream holds each event once.
"""

import argparse
import asyncio
import json
import os
import time

import nats


async def consume(url: str, stream: str, durable: str | None) -> int:
    client = await nats.connect(url, name="udl python consumer")
    try:
        jetstream = client.jetstream()
        last = (await jetstream.stream_info(stream)).state.last_seq
        subscription = await jetstream.pull_subscribe(">", durable=durable, stream=stream)
        seen = 0
        while last and seen < last:
            # Exactly what is left, so the fetch returns as soon as it has arrived.
            for message in await subscription.fetch(batch=min(256, last - seen), timeout=30):
                event = json.loads(message.data)
                print(event["id"], event["type"], event.get("subject", "-"), flush=True)
                await message.ack()
                seen = message.metadata.sequence.stream
        return 0
    finally:
        await client.close()


async def follow(url: str, stream: str, durable: str | None, count: int) -> int:
    client = await nats.connect(url, name="udl python consumer")
    try:
        jetstream = client.jetstream()
        subscription = await jetstream.subscribe(
            ">", stream=stream, durable=durable, manual_ack=True
        )
        for _ in range(count):
            message = await subscription.next_msg(timeout=120)
            received = time.time_ns() // 1000
            event = json.loads(message.data)
            print(event["id"], event["type"], event.get("subject", "-"), received, flush=True)
            await message.ack()
        return 0
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durable", help="durable consumer name (resumes after a restart)")
    parser.add_argument("--follow", type=int, metavar="COUNT", help="take COUNT events as they come")
    args = parser.parse_args()
    url = os.environ.get("UDL_NATS_URL", "nats://127.0.0.1:4222")
    stream = os.environ.get("UDL_NATS_STREAM", "UDL_CE")
    if args.follow:
        return asyncio.run(follow(url, stream, args.durable, args.follow))
    return asyncio.run(consume(url, stream, args.durable))


if __name__ == "__main__":
    raise SystemExit(main())
