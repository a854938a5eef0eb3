"""A local webhook receiver: it registers itself as a webhook endpoint, verifies every delivery's
signature with the endpoint's secret, answers at once, handles each webhook-id once, and prints
the events.

    python examples/receiver.py --ping                  # as the demo portal; a test ping
    python examples/receiver.py --role institution      # a bank's leads as they come
    python examples/receiver.py --count 1 --timeout 60  # stop after the first event

It listens on 127.0.0.1 (a free port unless ``--port``), which ``make run`` allows as a webhook
target (FINMATCH_WEBHOOK_ALLOW_PRIVATE=1; a deployment accepts public https URLs only). On exit
it deletes the endpoint it registered: nothing is left retrying towards a port that is gone.
portal.py and bank.py use the same ``WebhookReceiver``.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from connection import add_connection_arguments, client_for, heading, run, say

from finmatch_client import FinmatchClient, WebhookVerificationError, verify_webhook
from finmatch_client.models import EventType, WebhookEndpointCreate, WebhookEvent

PATH = "/finmatch/webhooks"
# What each role is sent (docs/operations.md, Webhooks). match.new_product is left out of the
# portal's default: the demo portal registered all 5,000 demo firms, so one new product can
# bring hundreds of them.
DEFAULT_EVENTS = {
    "portal": [EventType.APPLICATION_DECIDED],
    "institution": [
        EventType.APPLICATION_SUBMITTED,
        EventType.APPLICATION_WITHDRAWN,
        EventType.CONSENT_REVOKED,
    ],
    "admin": [EventType.MODEL_PROMOTED],
}


class WebhookReceiver:
    """An HTTP server in a background thread. Each POST is verified (the signature over the
    body's exact bytes, with any of ``secrets``; at most 5 minutes old): a bad one is answered
    400 and dropped, a good one 204 at once and queued for ``wait_for``, unless its webhook-id
    was handled already (delivery is at least once: a retry carries the same id)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = False) -> None:
        self.secrets: list[str] = []
        self.events: queue.Queue[WebhookEvent] = queue.Queue()
        self.rejected: list[str] = []
        self.quiet = quiet
        self._handled: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """What to answer a delivery (the status code)."""
        try:
            event = verify_webhook(list(self.secrets), headers, body)
        except WebhookVerificationError as error:  # not ours, tampered with, or a replay
            self.rejected.append(error.reason)
            self._print(f"refused a delivery: {error.reason} ({error})")
            return 400
        with self._lock:
            repeated = event.id in self._handled
            self._handled.add(event.id)
        if repeated:
            self._print(f"{event.id} again: already handled, answered 204 and ignored")
            return 204
        at = f"{event.timestamp:%H:%M:%S} UTC"
        self._print(f"{event.type} verified (webhook-id {event.id}, event of {at})")
        self.events.put(event)
        return 204

    def wait_for(
        self,
        event_type: EventType,
        *,
        where: Callable[[WebhookEvent], bool] = lambda _event: True,
        timeout: float = 60.0,
    ) -> WebhookEvent:
        """The next event of ``event_type`` that ``where`` accepts (others are set aside);
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event.type == event_type and where(event):
                return event
        raise TimeoutError(f"no {event_type} within {timeout:.0f} s")

    def _print(self, text: str) -> None:
        if not self.quiet:
            say("receiver", text)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)  # the exact bytes: the signature covers them
                status = 404 if self.path != PATH else receiver.receive(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the receiver prints what matters itself

        return Handler


@contextlib.contextmanager
def registered(
    client: FinmatchClient,
    receiver: WebhookReceiver,
    event_types: Sequence[EventType],
    description: str,
) -> Iterator[int]:
    """``receiver`` registered as a webhook endpoint of ``client``'s principal (its id), with
    the secret the API answered (shown this once) given to it; deleted again on exit."""
    endpoint = client.webhooks.create_endpoint(
        WebhookEndpointCreate(
            url=receiver.url, event_types=list(event_types), description=description
        )
    )
    receiver.secrets.append(endpoint.secret)
    try:
        yield endpoint.id
    finally:
        with contextlib.suppress(Exception):  # best effort: the API may be gone already
            client.webhooks.delete_endpoint(endpoint.id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=sorted(DEFAULT_EVENTS), default="portal")
    parser.add_argument(
        "--events",
        nargs="+",
        type=EventType,
        metavar="TYPE",
        help="event types to subscribe to (default: what the role is usually sent)",
    )
    parser.add_argument("--ping", action="store_true", help="send a test ping (webhook.ping)")
    parser.add_argument("--count", type=int, help="stop after this many events")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    add_connection_arguments(parser, ["portal", "institution", "admin"])
    args = parser.parse_args()
    events = args.events or DEFAULT_EVENTS[args.role]

    with (
        client_for(args, args.role) as client,
        WebhookReceiver(args.host, args.port) as receiver,
        registered(client, receiver, events, "examples/receiver.py") as endpoint_id,
    ):
        heading(f"Listening on {receiver.url} as the demo {args.role}")
        say("receiver", f"endpoint {endpoint_id}: {', '.join(events)}; Ctrl-C stops")
        if args.ping:
            delivery = client.webhooks.send_test(endpoint_id)
            say("receiver", f"test ping queued: webhook-id {delivery.webhook_id}")
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        received = 0
        while args.count is None or received < args.count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                say("receiver", f"{args.timeout:.0f} s passed; stopping")
                return 1 if args.count else 0
            try:
                event = receiver.events.get(timeout=min(left or 1.0, 1.0))
            except queue.Empty:
                continue
            received += 1
            say("receiver", f"event {received}: {event.type} {event.data}")
    return 0


if __name__ == "__main__":
    run(main)
