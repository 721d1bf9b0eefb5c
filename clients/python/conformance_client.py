"""The Python client under the conformance kit's client role (docs/CONFORMANCE.md).

    interprocess-converse conformance client -- python3 clients/python/conformance_client.py
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interprocess_converse import Client, ConverseError  # noqa: E402


def main() -> int:
    path = os.environ.get("CONVERSE_SOCKET")
    if not path:
        print("CONVERSE_SOCKET is not set", file=sys.stderr)
        return 2

    def result(run):
        try:
            return {"ok": run()}
        except ConverseError as error:
            return {"error": error.code}

    def cancel(event, ctx):
        pending = ctx.connection.start_ask(event["event"], timeout=30)
        timer = threading.Timer(event["after"] / 1000, pending.cancel)
        timer.start()
        return result(pending.result)

    def close(_event, ctx):
        threading.Timer(0.01, ctx.connection.close).start()
        return None

    handlers = {
        "echo": lambda event, ctx: event.get("value"),
        "conformance.ask": lambda event, ctx: result(lambda: ctx.connection.ask(event["event"])),
        "conformance.stream": lambda event, ctx: result(lambda: list(ctx.connection.stream(event["event"], window=event["window"]))),
        "conformance.tell": lambda event, ctx: ctx.connection.tell(event["event"]),
        "conformance.cancel": cancel,
        "conformance.close": close,
    }
    try:
        client = Client.connect(path, handlers=handlers)
    except ConverseError as error:
        print(f"could not connect: {error}", file=sys.stderr)
        return 1
    client.closed.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
