"""`releasegate approvers show | propose | approve | invite`: the governed approvers config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from releasegate.cli._common import console, exit_refused

approvers_app = typer.Typer(
    help="The governed approvers config: allow-lists, pinned keys, admins, owners.", no_args_is_help=True
)

_KEY = typer.Option("--key", help="Your private key (default <RELEASEGATE_KEY_DIR>/<--by>.pem).")


@approvers_app.command("show")
def approvers_show(
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the config in force as YAML.")] = False,
) -> None:
    """The approvers config in force (its digest and who made it so), its history, pending proposals,
    enrolment invitations (used or until when) and refused sources or changes."""
    import yaml

    from releasegate import bootstrap
    from releasegate.decisions import DecisionKind
    from releasegate.services.approvers import SUBJECT, pending, walk

    log = bootstrap.decision_log()
    records, _ = log.trusted(kind=DecisionKind.approvers_config, subject=SUBJECT)
    steps, problems = walk(records)
    if not steps:
        console.print("no governed approvers config yet: `releasegate infra up` trusts the first one")
        return
    if as_yaml:
        console.print(
            yaml.safe_dump(steps[-1].config.model_dump(mode="json"), sort_keys=False), highlight=False, soft_wrap=True
        )
        return
    for s in steps:
        console.print(
            f"{s.at:%Y-%m-%d %H:%M} UTC  {s.digest[:16]}  {s.how}  (decision {s.decision_id})", highlight=False
        )
    current = steps[-1]
    console.print(f"in force: {current.digest}", highlight=False, soft_wrap=True)
    for p in pending(records, steps):
        changes = "; ".join(p.details.get("changes") or [])
        console.print(
            f"pending proposal {p.decision_id} by {p.actor}: {changes}", highlight=False, markup=False, soft_wrap=True
        )
    used = {r.details.get("invitation_decision_id") for r in records}
    for r in records:
        d = r.details
        if d.get("status") == "invited":
            state = "used" if r.decision_id in used else f"until {d.get('expires_at')}"
            console.print(
                f"invitation {r.decision_id} for {d.get('name')} by {d.get('admin')}: {state}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    for r in records:
        if r.details.get("status") == "refused":
            console.print(
                f"refused {r.decision_id}: {r.decision_rationale}", highlight=False, markup=False, soft_wrap=True
            )
    for problem in problems:
        console.print(f"[red]does not verify[/red] {problem}", highlight=False, soft_wrap=True)


@approvers_app.command("propose")
def approvers_propose(
    config_file: Annotated[Path, typer.Argument(help="The whole proposed config (YAML, as blocks/approvers.yaml).")],
    by: Annotated[str, typer.Option(help="You: an admin of the config in force.")],
    key: Annotated[Path | None, _KEY] = None,
) -> None:
    """Sign and record a new approvers config. An allow-list or owners change is in force at once; a key
    change or a new admin waits for a second admin (`releasegate approvers approve`)."""
    from releasegate import bootstrap
    from releasegate.adapters.config import ConfigError, from_file
    from releasegate.policy.approvers import ConfigRefused
    from releasegate.services.approvers import propose
    from releasegate.store.keys import KeyRefused

    try:
        proposed = from_file("approvers", config_file)
    except ConfigError as exc:
        exit_refused("config_file", str(exc).splitlines()[0], code=2)
    try:
        pid, in_force, changes = propose(bootstrap.app(), proposed, by, key)
    except (ConfigRefused, KeyRefused) as exc:
        exit_refused(exc, code=2)
    console.print(f"proposal {pid} recorded: {'; '.join(changes)}", highlight=False, markup=False, soft_wrap=True)
    if in_force:
        console.print(f"in force now (decision {in_force})")
    else:
        console.print(f"a key change or a new admin: another admin signs it with `releasegate approvers approve {pid}`")


@approvers_app.command("approve")
def approvers_approve(
    proposal: Annotated[str, typer.Argument(help="The proposal's decision id (`releasegate approvers show`).")],
    by: Annotated[str, typer.Option(help="You: an admin of the config in force, not the proposer.")],
    key: Annotated[Path | None, _KEY] = None,
) -> None:
    """Sign a pending proposal as a second admin; it is in force once it has the signatures it needs."""
    from releasegate import bootstrap
    from releasegate.policy.approvers import ConfigRefused
    from releasegate.services.approvers import approve
    from releasegate.store.keys import KeyRefused

    try:
        in_force = approve(bootstrap.app(), proposal, by, key)
    except (ConfigRefused, KeyRefused) as exc:
        exit_refused(exc, code=2)
    console.print(f"in force now (decision {in_force})" if in_force else f"signed; {proposal} needs another admin")


@approvers_app.command("invite")
def approvers_invite(
    name: Annotated[str, typer.Argument(help="The approver to invite: a name on a list of the config in force.")],
    by: Annotated[str, typer.Option(help="You: an admin of the config in force.")],
    hours: Annotated[int, typer.Option(help="How long the invitation is valid (1 to 336 hours).")] = 24,
    key: Annotated[Path | None, _KEY] = None,
) -> None:
    """Sign and record a one-time passkey enrolment invitation for NAME; print its code once, to hand to
    the approver out of band. The enrolment it allows still needs two admins (`releasegate approvers
    approve`)."""
    from releasegate import bootstrap
    from releasegate.policy.approvers import ConfigRefused
    from releasegate.services.invitations import invite

    app = bootstrap.app()
    try:
        did, code, expires = invite(app, name, by, hours, key)
    except ConfigRefused as exc:
        exit_refused(exc, code=2)
    link = f"{app.settings.console_url.rstrip('/')}/enrol?name={name}"
    console.print(f"invitation {did} for {name} recorded, valid until {expires:%Y-%m-%d %H:%M} UTC", highlight=False)
    console.print(f"code (shown once, give it to {name} out of band): {code}", highlight=False, markup=False)
    console.print(f"enrol at: {link}", highlight=False, markup=False, soft_wrap=True)
