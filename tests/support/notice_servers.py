"""A real SMTP server (aiosmtpd) and a local HTTP receiver for the notices' integration tests, and the
settings and approvers config a deployment sets for notices (``notifying``). Import the fixtures into
the test module that uses them."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

CONSOLE = "https://console.bank.example"
EMAILS = {"pm-anna": "anna@bank.example", "pm-ben": "ben@bank.example", "risk-carla": "carla@bank.example"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[list[dict[str, Any]], str]]:
    posts: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield posts, f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0"
    server.shutdown()
    server.server_close()


@pytest.fixture
def notifying(rg_home, monkeypatch, mailbox, receiver):
    """The settings and the approvers config a deployment sets for notices."""
    path = rg_home.parent / "approvers" / "approvers.yaml"
    doc = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**doc, "emails": EMAILS}))
    monkeypatch.setenv("RELEASEGATE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RELEASEGATE_SMTP_PORT", str(mailbox[1]))
    monkeypatch.setenv("RELEASEGATE_SMTP_TLS", "none")
    monkeypatch.setenv("RELEASEGATE_SMTP_SENDER", "releasegate@bank.example")
    monkeypatch.setenv("RELEASEGATE_NOTIFY_WEBHOOK_URL", receiver[1])
    monkeypatch.setenv("RELEASEGATE_CONSOLE_URL", CONSOLE)
