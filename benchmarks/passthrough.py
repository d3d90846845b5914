"""The ceiling: a raw aiokafka consume -> produce passthrough of the same bytes, no decoding.
Run as ``python -m benchmarks.passthrough BOOTSTRAP IN OUT GROUP``; stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main(bootstrap: str, source: str, sink: str, group: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, linger_ms=1)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            for records in batches.values():
                for msg in records:
                    await producer.send(sink, msg.value, key=msg.key, headers=list(msg.headers or ()))
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
