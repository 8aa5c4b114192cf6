"""The ``Notifier`` adapters (``releasegate.promotion_ports``): an e-mail over SMTP (stdlib ``smtplib``)
to each eligible approver with an address in the governed config, and a POST of ``{"text": ...}`` to a
Slack/Teams-compatible incoming webhook (``httpx``). Each returns the error as text instead of raising:
a notice never fails a promotion run (the use case records it)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Literal

import httpx

from releasegate.promotion_ports import Notice

TIMEOUT_S = 10.0


def subject_line(n: Notice) -> str:
    if n.kind != "approval":  # an escalation, a reminder: its headline
        return f"[releasegate] {n.summary}"
    return f"[releasegate] {n.role.upper()} approval waits: {n.model} v{n.version}"


def message_text(n: Notice) -> str:
    who = ", ".join(n.approvers) or "nobody eligible"
    if n.kind == "escalation":
        facts = "".join(f" {f}." for f in n.facts)
        return f"{n.summary}.{facts} On call ({n.role}): {who}. See the console: {n.link}"
    if n.kind == "reminder":
        facts = "".join(f" {f}." for f in n.facts)
        return f"{n.summary[0].upper()}{n.summary[1:]}.{facts} Sent to: {who}. Open it in the console: {n.link}"
    return (
        f"{n.model} v{n.version} waits for {n.role.upper()} approval (requested by {n.requested_by}). "
        f"Eligible approvers: {who}. Review and decide in the console: {n.link}"
    )


class SmtpNotifier:
    """One message to the eligible approvers that have an address (``addresses``: name -> e-mail, read
    when the notice is sent: the governed config in force)."""

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        addresses: Callable[[], Mapping[str, str]],
        tls: Literal["none", "starttls", "ssl"] = "starttls",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.addresses = host, port, sender, addresses
        self.tls, self.username, self.password = tls, username, password

    def send(self, notice: Notice) -> str | None:
        try:
            book = self.addresses()
            to = [book[n] for n in notice.approvers if n in book]
            if not to:
                return f"no e-mail address for {', '.join(notice.approvers) or 'any eligible approver'}"
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = self.sender, ", ".join(to), subject_line(notice)
            msg.set_content(message_text(notice))
            context = ssl.create_default_context()
            smtp = (
                smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT_S, context=context)
                if self.tls == "ssl"
                else smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S)
            )
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
            return None
        except Exception as exc:  # the adapter's boundary: a notice never fails the run
            return f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}"


def chat_text(n: Notice) -> str:
    """The message with ``&``, ``<`` and ``>`` escaped as Slack asks: a run's parameters (who requested
    it) cannot mention ``<!channel>`` or hide a link."""
    return message_text(n).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """A POST of ``{"text": ...}`` (Slack and Teams incoming webhooks both read ``text``)."""

    channel = "webhook"

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.transport = url, transport

    def send(self, notice: Notice) -> str | None:
        try:
            with httpx.Client(timeout=TIMEOUT_S, transport=self.transport) as client:
                r = client.post(self.url, json={"text": chat_text(notice)})
            if r.status_code >= 300:
                return f"webhook answered HTTP {r.status_code}: {r.text[:200]}"
            return None
        except Exception as exc:  # the adapter's boundary: a notice never fails the run
            return f"webhook: {type(exc).__name__}: {exc}"
