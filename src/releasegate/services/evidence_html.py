"""The evidence pack as one HTML document for people: self-contained (no script, no CDN), printable.

Each section says which SR 11-7 area and which EU AI Act article it answers (``evidence_pack.MAPPING``);
the gate report's figures are drawn with the console's own charts (``console.charts``). Pure: a string
from the pack's dict.
"""

from __future__ import annotations

from html import escape
from typing import Any

from releasegate.console.charts import kpi_chart, psi_chart, series_chart

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1f1f1f}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;
vertical-align:top}th{background:#f2f2f2}code{font-size:12px;word-break:break-all}.maps{color:#555;font-size:13px}
.bad{color:#b3261e}.chart text{font-size:11px}h2{border-bottom:2px solid #1f1f1f;margin-top:2rem}"""

LABELS = {"sr_11_7": "SR 11-7", "eu_ai_act": "EU AI Act"}


def _cell(v: Any) -> str:
    if v is None or v == "" or v == []:
        return "–"
    if isinstance(v, list):
        return escape(", ".join(str(x) for x in v))
    if isinstance(v, dict):
        return escape(", ".join(f"{k}: {x}" for k, x in v.items()))
    text = str(v)
    return f"<code>{escape(text)}</code>" if len(text) >= 40 and " " not in text else escape(text)


def _table(rows: list[dict[str, Any]], columns: list[str], empty: str = "none recorded") -> str:
    if not rows:
        return f"<p><em>{escape(empty)}</em></p>"
    head = "".join(f"<th>{escape(LABELS.get(c, c.replace('_', ' ')))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(pack: dict[str, Any], key: str, title: str, body: str) -> str:
    m = next((m for m in pack.get("mapping", []) if m["section"] == key), None)
    maps = f'<p class="maps">SR 11-7: {escape(m["sr_11_7"])} · EU AI Act: {escape(m["eu_ai_act"])}</p>' if m else ""
    return f'<section id="{key}"><h2>{escape(title)}</h2>{maps}{body}</section>'


def _halts(halts: dict[str, Any]) -> str:
    """Each step of the model's halt switch while the version was champion: who, which step, ticket."""
    rows = [
        {
            **{k: h.get(k) for k in ("seq", "decision_timestamp", "actor", "sealed")},
            **{k: (h.get("details") or {}).get(k) for k in ("step", "role", "ticket_ref", "reason", "pinned_champion")},
        }
        for h in halts.get("records") or []
    ]
    columns = ["seq", "decision_timestamp", "step", "actor", "role", "ticket_ref", "reason", "pinned_champion"]
    return _table(rows, [*columns, "sealed"], halts.get("note") or "none recorded")


def _promotion(p: dict[str, Any]) -> str:
    facts = {k: p.get(k) for k in ("run_id", "candidate_version", "prod_version", "status", "outcome")}
    out = [_table([facts], list(facts))]
    out.append(_table([{"ref": k, "value": v} for k, v in (p.get("refs") or {}).items()], ["ref", "value"], "no refs"))
    dossier = p.get("dossier") or {}
    figures = dossier.get("figures") or {}
    charts = [c for c in (kpi_chart(figures), psi_chart(figures)) if c]
    out.append("".join(charts))
    report = p.get("gate_report") or {}
    gates = report.get("gates") if isinstance(report, dict) else None
    if isinstance(gates, list):
        out.append(_table([g for g in gates if isinstance(g, dict)], sorted({k for g in gates for k in g})))
    out.append(
        _table(
            [{"item": "gate report SHA-256", "value": p.get("gate_report_sha256")}]
            + [{"item": k, "value": v} for k, v in dossier.items() if k not in ("figures", "registry_tags")]
            + [
                {"item": f"registry tags ({env})", "value": ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))}
                for env, tags in (dossier.get("registry_tags") or {}).items()
            ],
            ["item", "value"],
        )
    )
    out.append(_table(p.get("records") or [], ["seq", "decision_timestamp", "outcome", "rationale"]))
    return "".join(out)


def _approval_row(a: dict[str, Any]) -> dict[str, Any]:
    d = a.get("details") or {}
    scheme = d.get("signature_scheme") or ("ed25519" if d.get("signature") else "unsigned")
    credential = (d.get("webauthn") or {}).get("passkey", {}).get("credential_id") if scheme == "webauthn" else None
    return {
        "seq": a.get("seq"),
        "role": d.get("role"),
        "approver": d.get("approver"),
        "decision": d.get("decision") or a.get("outcome"),
        "at": a.get("decision_timestamp"),
        "scheme": scheme,
        "key_or_passkey": credential or d.get("public_key"),
        "signature": d.get("signature"),
        "config": (a.get("config_digest") or "")[:16],
    }


def _monitoring_charts(verdicts: list[dict[str, Any]]) -> str:
    """Max PSI and the KPI drop per business date, each a line over the dates (a verdict without the
    figure is left out of that line); the days that led to a rollback or retrain are listed under them."""
    charts = []
    for key, title in (("max_psi", "max PSI per business date"), ("metric_drop", "KPI drop per business date")):
        points = [(str(v.get("business_date")), float(v[key])) for v in verdicts if isinstance(v.get(key), int | float)]
        chart = series_chart(title, points, None)
        charts.append(f"<figure>{chart}<figcaption>{escape(title)}</figcaption></figure>" if chart else "")
    acted = [
        f"{v.get('business_date')}: {v.get('action')}" for v in verdicts if v.get("rollback_method") or v.get("retrain")
    ]
    if acted:
        charts.append(f"<p class=bad>Days that led to a rollback or retrain: {escape('; '.join(acted))}</p>")
    return "".join(charts)


def render(pack: dict[str, Any]) -> str:
    """The HTML document of a pack (``services.evidence_pack.assemble``)."""
    model, version = escape(str(pack["model"])), escape(str(pack["version"]))
    inv = pack.get("inventory") or {}
    log = pack.get("decision_log") or {}
    cp = log.get("checkpoint") or {}
    span = log.get("span") or []
    excerpt = set(log.get("excerpt") or [])
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Evidence pack: {model} v{version}</title>"
        f"<style>{STYLE}</style></head><body><h1>Evidence pack: {model} v{version}</h1>",
        f"<p>Created {escape(str(pack.get('created_at')))} by releasegate. Signed by the service key "
        f"<code>{escape(pack['service_key']['public_key'])}</code> (<code>evidence.sig</code>). Check it offline: "
        "<code>releasegate evidence verify DIR --public-key KEY</code>.</p>",
        _table(pack.get("mapping") or [], ["section", "sr_11_7", "eu_ai_act"]),
        _section(
            pack,
            "inventory",
            "Inventory record",
            _table([{"field": k, "value": v} for k, v in inv.items()], ["field", "value"]),
        ),
        _section(
            pack,
            "promotions",
            "Development and validation: promotions",
            "".join(_promotion(p) for p in pack.get("promotions") or []),
        ),
        _section(
            pack,
            "approvals",
            "Approvals and their signatures",
            _table([_approval_row(a) for a in pack.get("approvals") or []], list(_approval_row({}).keys()))
            + _table(
                [{k: c.get(k) for k in ("seq", "digest", "at", "how")} for c in pack.get("approvers_configs") or []],
                ["seq", "digest", "at", "how"],
                "no governed approvers config in force at the approvals",
            ),
        ),
        _section(
            pack,
            "exceptions",
            "Exceptions and overrides",
            _table(
                pack.get("exceptions") or [],
                ["seq", "decision_timestamp", "outcome", "actor", "ticket_ref", "expiry", "rationale"],
            ),
        ),
        _section(
            pack,
            "monitoring",
            "Ongoing monitoring since release (EOD verdicts)",
            _monitoring_charts(pack.get("monitoring") or [])
            + _table(
                pack.get("monitoring") or [],
                ["business_date", "version", "action", "reason_code", "max_psi", "metric_drop", "breached", "seq"],
                "no EOD verdict recorded since the release",
            ),
        ),
        _section(
            pack,
            "rollbacks",
            "Rollbacks and other changes",
            _table(pack.get("rollbacks") or [], ["seq", "decision_timestamp", "kind", "outcome", "rationale"])
            + _table(
                pack.get("other_changes") or [],
                ["seq", "decision_timestamp", "kind", "outcome", "rationale"],
                "no retrain or incident",
            ),
        ),
        _section(pack, "halts", "Halts", _halts(pack.get("halts") or {})),
        _section(
            pack,
            "decision_log",
            "Decision-log excerpt and its proof",
            f"<p>{len(excerpt)} records concern this version; the span #{span[0]['seq'] if span else '–'}–"
            f"#{span[-1]['seq'] if span else '–'} ({len(span)} records) links them to checkpoint "
            f"#{cp.get('last_seq')} (<code>{escape(str(cp.get('last_hash')))}</code>, "
            f"{escape(str(cp.get('created_at')))}), "
            "signed by the service key.</p>"
            + _table(
                [
                    {
                        "seq": e["seq"],
                        "kind": e["record"].get("decision_kind"),
                        "subject": e["record"].get("subject"),
                        "actor": e["record"].get("actor"),
                        "record_hash": e["record_hash"],
                    }
                    for e in span
                    if e["seq"] in excerpt
                ],
                ["seq", "kind", "subject", "actor", "record_hash"],
            ),
        ),
        "</body></html>\n",
    ]
    return "".join(parts)
