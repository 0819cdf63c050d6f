"""An SMTP sink for the fault suite: one JSON line per message received (Message-ID,
recipients, subject, time), optionally slow, so a worker can be killed mid-delivery.

Usage: python smtp_sink.py --port 8400 --out mail.jsonl [--delay 0.2]
"""

import argparse
import asyncio
import email
import json
import signal
import threading
import time

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, path: str, delay: float):
        self.path, self.delay = path, delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            # Slow on purpose: each delivery takes this long, so deliveries are in flight.
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        line = json.dumps(
            {
                "message_id": message["Message-ID"],
                "to": envelope.rcpt_tos,
                "subject": str(message["Subject"]),
                "t": time.time(),
            }
        )
        with self.lock, open(self.path, "a") as out:
            out.write(line + "\n")
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    controller = Controller(Recorder(args.out, args.delay), hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Bounded: a sink nobody stops exits after an hour.
    stop.wait(3600)
    controller.stop()


if __name__ == "__main__":
    main()
