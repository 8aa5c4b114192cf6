"""Tell a role's eligible approvers that a promotion run waits for them (``services.promotion_approvals``
calls this before it asks): one notice per pause and channel, each attempt recorded, never in the way.

A pause is keyed ``<run id>:<role>:<round>`` (``NotificationLog.pause_round``: one more after each
expired joint ack), so a refused submission asked again, a restarted run or a resumed pause finds the
record of its notice and sends nothing. A channel that fails is recorded as a ``notification``
rejected with the error and logged as a warning; the run goes on to wait for the approval.
"""

from __future__ import annotations

import logging
from typing import Any

from releasegate.policy.handshake import Handshake, Role, ineligible
from releasegate.promotion_ports import Notice, Notifications, PromotionPorts


def eligible_approvers(h: Handshake, role: Role) -> tuple[str, ...]:
    """The names on ``role``'s allow-list who may give this approval (not an owner, not the requester)."""
    bad = ineligible(h, role)
    return tuple(n for n in h.allow_lists.get(role, []) if n not in bad)


def notify_approvers(p: PromotionPorts, role: Role, h: Handshake) -> list[str]:
    """Send the notice of this pause on every channel not yet tried; returns the decision ids recorded."""
    n = p.notifications
    if n is None or not n.notifiers:
        return []
    done: list[str] = []
    try:
        notice = Notice(
            key=f"{p.run_id}:{role.value}:{n.log.pause_round(p.run_id)}",
            run_id=p.run_id,
            role=role.value,
            model=h.model,
            version=str(h.candidate_version),
            requested_by=h.requested_by,
            approvers=eligible_approvers(h, role),
            link=f"{n.console_url.rstrip('/')}/inbox?run={p.run_id}#{p.run_id}",
        )
        done = deliver(n, notice, p.logger)
    except Exception as exc:  # a notice never fails the run: the approval is still asked for
        p.logger.warning("notices for %s approval not sent: %s", role.value.upper(), exc)
    return done


def deliver(n: Notifications, notice: Notice, logger: logging.Logger | logging.LoggerAdapter[Any]) -> list[str]:
    """Send ``notice`` on every channel of ``n`` not yet tried for its key, recording each attempt; a
    channel that fails is recorded and logged as a warning. Returns the decision ids recorded."""
    done: list[str] = []
    for notifier in n.notifiers:
        if n.log.sent(notice, notifier.channel):
            continue
        error = notifier.send(notice)
        did = n.log.record(notice, notifier.channel, error)
        done.append(did)
        if error:
            logger.warning("%s notice for %s not delivered (decision %s): %s", notifier.channel, notice.key, did, error)
    return done
