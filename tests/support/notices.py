"""In-memory fakes of the notice ports (``releasegate.promotion_ports``): a channel that records what it
was asked to send, and a notification log kept in a ``World``'s decision log."""

from __future__ import annotations

from dataclasses import dataclass, field

from releasegate.promotion_ports import Notice
from tests.support.promotion_world import World


@dataclass
class FakeNotifier:
    channel: str
    fail: str | None = None  # the error every send returns
    broken: bool = False  # raises (an adapter that forgot its boundary)
    sent: list[Notice] = field(default_factory=list)

    def send(self, notice: Notice) -> str | None:
        if self.broken:
            raise RuntimeError("adapter bug")
        self.sent.append(notice)
        return self.fail


@dataclass
class FakeNotificationLog:
    """Records the attempts in the world's decision log; the round counts its expired joint acks."""

    world: World

    def pause_round(self, run_id: str) -> int:
        return sum(1 for r in self.world.of("outcome") if r["run"] == run_id and r.get("reason_code") == "ACK_EXPIRED")

    def sent(self, notice: Notice, channel: str) -> bool:
        return any(r["key"] == notice.key and r["channel"] == channel for r in self.world.of("notification"))

    def record(self, notice: Notice, channel: str, error: str | None) -> str:
        return self.world._append(kind="notification", key=notice.key, channel=channel, error=error)
