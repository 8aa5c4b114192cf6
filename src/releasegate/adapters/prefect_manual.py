"""Start a deployment's run from the CLI, follow it, and find the promotions that wait for an approver.

What ``releasegate run``, ``releasegate watch`` and ``releasegate awaiting`` need from Prefect. Prefect's
own ``prefect deployment run --watch`` starts and follows a run too; these add what an operator of
releasegate asks next: why a run is *Deferred* (the gateway's reason code and next evaluation) and, when a
promotion pauses, which role it waits for and the ``releasegate approve`` line to run. The role is read
from Prefect's own pause key (``<role>-approval-<hex>``, ``flows/promotion.py``); nothing is stored by us.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from releasegate.errors import Refused, Unavailable

APPROVAL_KEY = "-approval-"  # flows/promotion.py pauses with key f"{role}-approval-{uuid}"


class NoServer(Unavailable):
    """No Prefect API is configured: a run started now would need a server and a worker."""


class StartRefused(Refused):
    """A run cannot be started or read as asked: ``field`` and ``rule`` say why."""

    def __init__(self, field: str, rule: str):
        super().__init__(field, rule)
        self.args = (f"{field}: {rule}",)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RunView:
    """A flow run as the CLI shows it."""

    id: str
    name: str
    deployment: str | None
    parameters: dict[str, Any]
    state_type: str
    state_name: str
    message: str
    scheduled_time: datetime | None  # a Scheduled (or Deferred) run's next start
    awaiting_role: str | None  # a paused promotion: the role whose approval it waits for
    final: bool
    completed: bool
    paused_since: datetime | None

    @property
    def label(self) -> str:
        """The state as a person reads it: ``Deferred (PRIORITY_CONFLICT)``, ``Paused (awaiting PM)``."""
        if self.awaiting_role:
            return f"{self.state_name} (awaiting {self.awaiting_role.upper()} approval)"
        if self.state_name == "Deferred" and self.message:
            return f"Deferred ({self.message.split()[0]})"
        return self.state_name


def api_url() -> str:
    """The configured Prefect API (a setting or a profile), or ``NoServer``."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise NoServer(
            "no Prefect server is configured (PREFECT_API_URL): a run needs a server and a worker on the "
            "releasegate pool; start the local stack with `releasegate up` and "
            "`source ~/.releasegate/stack/stack.env`, or set PREFECT_API_URL to your server"
        )
    return str(url)


def ui_url(run_id: str) -> str:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value() or api_url().removesuffix("/api")
    return f"{str(base).rstrip('/')}/runs/flow-run/{run_id}"


def full_name(deployment: str) -> str:
    """releasegate's flows are named after their deployment: ``eod-scoring`` is ``eod-scoring/eod-scoring``."""
    return deployment if "/" in deployment else f"{deployment}/{deployment}"


def did_you_mean(name: str, known: list[str]) -> str:
    """``" (did you mean 'x'?)"`` for the known name closest to ``name``, else ""."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def deployed_names(client: Any) -> list[str]:
    """The deployments on the API as ``releasegate run`` takes them: ``eod-scoring`` for a deployment named
    after its flow, ``flow/deployment`` otherwise (``eod-scoring/credit``)."""
    deps = client.read_deployments(limit=200)
    flows = {f.id: f.name for f in client.read_flows(limit=200)}
    out = []
    for d in deps:
        flow = flows.get(d.flow_id, "")
        out.append(d.name if flow == d.name else f"{flow}/{d.name}")
    return sorted(out)


def _view(fr: Any, deployment: str | None = None) -> RunView:
    state = fr.state
    details = state.state_details if state is not None else None
    key = (details.pause_key or "") if details is not None else ""
    paused = state is not None and state.is_paused()
    return RunView(
        id=str(fr.id),
        name=fr.name,
        deployment=deployment,
        parameters=dict(fr.parameters or {}),
        state_type=state.type.value if state is not None else "NONE",
        state_name=(state.name if state is not None else None) or "",
        message=(state.message if state is not None else None) or "",
        scheduled_time=details.scheduled_time if details is not None and state.is_scheduled() else None,
        awaiting_role=key.split(APPROVAL_KEY)[0] if paused and APPROVAL_KEY in key else None,
        final=state is not None and state.is_final(),
        completed=state is not None and state.is_completed(),
        paused_since=state.timestamp if paused else None,
    )


def _signature(dep: Any) -> str:
    """The deployment's parameters as its flow declares them: ``requested_by (required), reason_code``."""
    schema = dep.parameter_openapi_schema or {}
    required = set(schema.get("required") or [])
    names = list((schema.get("properties") or {}).keys())
    return ", ".join(f"{n} (required)" if n in required else n for n in names) or "none"


def _types(prop: dict[str, Any]) -> set[str]:
    out = {prop["type"]} if isinstance(prop.get("type"), str) else set(prop.get("type") or [])
    for alt in (prop.get("anyOf") or []) + (prop.get("allOf") or []):
        out |= _types(alt)
    return out


def typed_parameters(dep: Any, raw: dict[str, str]) -> dict[str, Any]:
    """``key=value`` texts as the flow's parameters: a text parameter keeps its text (``candidate_version=1``
    is the string "1"), any other value is read as JSON (numbers, booleans, null, lists), else kept as
    text for Prefect's own schema check. A name the flow does not take is refused."""
    schema = dep.parameter_openapi_schema or {}
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in props:
            raise StartRefused(
                "--param", f"{key!r} is not a parameter of {dep.name} (its parameters: {_signature(dep)})"
            )
        kinds = _types(props[key])
        if kinds and kinds <= {"string", "null"} and not (text == "null" and "null" in kinds):
            out[key] = text
            continue
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def start(deployment: str, raw: dict[str, str]) -> RunView:
    """Create a run of ``deployment`` from ``key=value`` texts (``typed_parameters``); Prefect then checks
    them against the flow's signature."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    api = api_url()
    name = full_name(deployment)
    with get_client(sync_client=True) as client:
        try:
            dep = client.read_deployment_by_name(name)
        except ObjectNotFound:
            hint = did_you_mean(deployment, deployed_names(client))
            raise StartRefused(
                "deployment",
                f"{name!r} is not deployed on {api}{hint}: `releasegate deploy` deploys releasegate's own flows, "
                "`releasegate deploy --prefect-file <your prefect.yaml>` your team's",
            ) from None
        parameters = typed_parameters(dep, raw)
        try:
            fr = client.create_flow_run_from_deployment(dep.id, parameters=parameters, tags=["releasegate", "cli"])
        except PrefectHTTPStatusError as exc:  # the server's parameter-schema check
            detail = exc.response.json().get("detail", str(exc)) if exc.response is not None else str(exc)
            raise StartRefused("--param", f"{detail} (parameters of {name}: {_signature(dep)})") from None
    return _view(fr, name)


def read_flow_run(run_id: str) -> Any:
    """The flow run ``run_id`` from the Prefect API; ``StartRefused`` naming ``run`` when the text is not a
    flow run id or the API has no such run (``releasegate watch`` and ``releasegate approve``)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        uid = UUID(run_id)
    except ValueError:
        raise StartRefused("run", f"{run_id!r} is not a flow run id (a UUID)") from None
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(uid)
        except ObjectNotFound:
            raise StartRefused(
                "run", f"no flow run {run_id} on the Prefect API {client.api_url}: check PREFECT_API_URL"
            ) from None


def read(run_id: str) -> RunView:
    """The run as ``watch`` shows it (polled every second: one API call, no deployment lookup)."""
    api_url()
    return _view(read_flow_run(run_id))


VERDICT_FIELDS = ("outcome", "action", "reason_code", "reason")  # rows of an artifact's field/value table


def run_artifacts(run_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """The artifacts of the run and of its subflows (the promotion's dossier and gate report) as (key,
    description, verdict): the verdict holds the ``VERDICT_FIELDS`` rows of a markdown artifact's
    ``| field | value |`` table (EOD's ``eod-<model>``: action, reason_code...)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(run_id)])),
            limit=50,
        )
        ids = [UUID(run_id), *(r.id for r in children)]
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
    out = []
    for a in found:
        verdict: dict[str, str] = {}
        if a.type == "markdown" and isinstance(a.data, str):
            for line in a.data.splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 2 and cells[0] in VERDICT_FIELDS and cells[0] not in verdict:
                    verdict[cells[0]] = cells[1]
        out.append((a.key or str(a.id), a.description or "", verdict))
    return out


PAGE = 200  # flow runs per API read (the server's default cap on ``limit``)
PROMOTION = "promotion/promotion"


def _paused_filters(ids: list[Any] | None = None, seen: list[Any] | None = None) -> dict[str, Any]:
    """Paused runs of the ``promotion`` deployment (``ids``: only these; ``seen``: not these)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    by_id = FlowRunFilterId(any_=ids) if ids is not None else FlowRunFilterId(not_any_=seen) if seen else None
    return {
        "flow_run_filter": FlowRunFilter(
            id=by_id, state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
        ),
        "deployment_filter": DeploymentFilter(name=DeploymentFilterName(any_=["promotion"])),
    }


def _waiting(client: Any, runs: list[Any]) -> list[RunView]:
    """The runs that wait for an approver, with the flow's defaults for parameters a run was not given
    (``requested_by``: registry-event), oldest pause first."""
    from prefect.exceptions import ObjectNotFound

    try:
        schema = client.read_deployment_by_name(PROMOTION).parameter_openapi_schema or {}
    except ObjectNotFound:
        schema = {}
    defaults = {k: p["default"] for k, p in (schema.get("properties") or {}).items() if "default" in p}
    views = [_view(fr, PROMOTION) for fr in runs]
    views = [replace(v, parameters={**defaults, **v.parameters}) for v in views]
    waiting = [v for v in views if v.awaiting_role]
    return sorted(waiting, key=lambda v: (v.paused_since.timestamp() if v.paused_since else 0.0, v.id))


def awaiting_approval() -> list[RunView]:
    """Every paused run of the ``promotion`` deployment that waits for an approver, oldest pause first.
    Read page by page (``PAGE`` runs per call), each page without the runs already read, until the API
    has no more: a run that resumes meanwhile cannot shift another out of the pages."""
    from prefect import get_client

    api_url()
    runs: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(**_paused_filters(seen=[fr.id for fr in runs]), limit=PAGE)
            runs.extend(page)
            if len(page) < PAGE:
                break
        return _waiting(client, runs)


def awaiting_among(run_ids: list[str]) -> tuple[int, list[RunView]]:
    """How many runs of the ``promotion`` deployment are paused, and those of ``run_ids`` that are paused
    and wait for an approver, as the API has them now (an inbox page confirms its runs with this; one
    client, one count and one read)."""
    from prefect import get_client

    ids = []
    for text in run_ids:
        try:
            ids.append(UUID(text))
        except ValueError:
            continue
    api_url()
    with get_client(sync_client=True) as client:
        count = int(client.count_flow_runs(**_paused_filters()))
        if not ids:
            return count, []
        return count, _waiting(client, client.read_flow_runs(**_paused_filters(ids=ids), limit=len(ids)))


@dataclass(frozen=True)
class ArtifactView:
    id: str
    key: str | None
    type: str
    description: str
    data: Any  # markdown text, a table's rows, or whatever the artifact holds
    flow_run_id: str | None
    created: datetime | None


def read_artifact(ref: str) -> ArtifactView:
    """The artifact ``ref`` names: an id (also as ``artifact:<id>``, how a form links it) or a key (its
    newest version). ``StartRefused`` naming ``artifact`` when the API has none, with the closest key."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    api_url()
    text = ref.strip().removeprefix("artifact:")
    try:
        by: ArtifactFilter = ArtifactFilter(id=ArtifactFilterId(any_=[UUID(text)]))
    except ValueError:
        by = ArtifactFilter(key=ArtifactFilterKey(any_=[text]))
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=by, sort=ArtifactSort.CREATED_DESC, limit=1)
        if not found:
            keys = sorted({a.key for a in client.read_latest_artifacts(limit=200) if a.key})
            raise StartRefused(
                "artifact",
                f"no artifact with the key or id {ref!r} on {client.api_url}{did_you_mean(text, keys)}; "
                "artifact keys of a run are listed by `releasegate watch RUN`",
            )
    a = found[0]
    return ArtifactView(
        id=str(a.id),
        key=a.key,
        type=a.type or "",
        description=a.description or "",
        data=a.data,
        flow_run_id=str(a.flow_run_id) if a.flow_run_id else None,
        created=a.created,
    )


def resume_paused(run_id: str, run_input: dict[str, Any]) -> None:
    """Resume a paused promotion with an approval form's input (what the Prefect UI's form sends).
    ``StartRefused`` naming ``run`` for a run that does not exist or no longer waits."""
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.flow_runs import resume_flow_run

    fr = read_flow_run(run_id)
    try:
        resume_flow_run(fr.id, run_input=run_input)
    except (PrefectHTTPStatusError, RuntimeError, ValueError) as exc:
        raise StartRefused("run", f"run {run_id} did not take the approval: {exc}") from None
