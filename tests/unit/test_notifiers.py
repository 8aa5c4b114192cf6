"""The notice adapters' boundaries (``adapters.notifiers``): what they send, and that they return an error
instead of raising."""

from __future__ import annotations

import json

import httpx

from releasegate.adapters.notifiers import SmtpNotifier, WebhookNotifier
from releasegate.promotion_ports import Notice


def notice(**kw) -> Notice:
    base = dict(
        key="r1:risk:0",
        run_id="r1",
        role="risk",
        model="credit",
        version="4",
        requested_by="ml-engineer",
        approvers=("risk-carla",),
        link="https://console.example/inbox#r1",
    )
    return Notice(**{**base, **kw})


def test_the_webhook_escapes_what_a_run_parameter_could_smuggle_into_chat():
    seen: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    hook = WebhookNotifier("https://hooks.example/T/B", transport=httpx.MockTransport(answer))
    assert hook.send(notice(requested_by="<!channel> & <https://evil.example|click>")) is None
    [body] = seen
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
    assert "https://console.example/inbox#r1" in body["text"]


def test_a_webhook_error_status_is_returned_not_raised():
    hook = WebhookNotifier("https://hooks.example/T/B", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    assert (hook.send(notice()) or "").startswith("webhook answered HTTP 404")


def test_smtp_refuses_a_header_injection_and_returns_the_error():
    mail = SmtpNotifier("127.0.0.1", 1, "rg@bank.example", lambda: {"risk-carla": "carla@bank.example"}, tls="none")
    error = mail.send(notice(version="4\r\nBcc: everyone@bank.example")) or ""
    assert error.startswith("SMTP 127.0.0.1:1: ValueError") and "linefeed" in error


def test_smtp_without_an_address_for_anyone_eligible_says_so():
    mail = SmtpNotifier("127.0.0.1", 1, "rg@bank.example", lambda: {}, tls="none")
    assert mail.send(notice()) == "no e-mail address for risk-carla"
