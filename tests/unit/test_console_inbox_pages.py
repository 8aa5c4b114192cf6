"""The inbox pages what waits (50 a page, oldest pause first) and says how many wait in all: no waiting
promotion is left out, a page past the last goes to the last, a page that is not a number is refused
and recorded."""

from dataclasses import replace

from tests.support.console import rig


def many(r, risk: int, pm: int = 0):
    """The rig's desk with ``risk`` runs awaiting RISK and ``pm`` awaiting PM."""
    pm_item, risk_item = type(r.desk).pending(r.desk)
    items = [replace(risk_item, run_id=f"risk-{n:04d}") for n in range(risk)]
    items += [replace(pm_item, run_id=f"pm-{n:04d}") for n in range(pm)]
    r.desk.pending = lambda: items  # type: ignore[method-assign]
    return items


def runs_on(page: str) -> list[str]:
    return [part.split('"')[0] for part in page.split('<section class="item" id="')[1:]]


def test_every_waiting_promotion_is_on_a_page_with_the_total_shown():
    r = rig()
    items = many(r, 120, pm=7)
    r.sign_in("risk-carla")
    seen = []
    first = r.client.get("/inbox").text
    assert "showing 1–50 of 120" in first and 'rel="next" href="/inbox?page=2"' in first and 'rel="prev"' not in first
    seen += runs_on(first)
    second = r.client.get("/inbox?page=2").text
    assert "showing 51–100 of 120" in second and 'href="/inbox?page=1"' in second and 'href="/inbox?page=3"' in second
    seen += runs_on(second)
    last = r.client.get("/inbox?page=3").text
    assert "showing 101–120 of 120" in last and 'rel="next"' not in last and 'rel="prev" href="/inbox?page=2"' in last
    seen += runs_on(last)
    assert len(seen) == len(set(seen)) == 120  # each RISK item exactly once; the PM ones are not hers
    assert seen == [i.run_id for i in items if i.run_id.startswith("risk-")]


def test_a_reader_pages_through_every_role():
    r = rig()
    many(r, 40, pm=30)
    r.sign_in("audit-ida")
    page = r.client.get("/inbox?page=2").text
    assert "showing 51–70 of 70" in page and len(runs_on(page)) == 20


def test_a_page_past_the_last_goes_to_the_last_and_one_that_is_not_a_number_is_refused():
    r = rig()
    many(r, 60)
    r.sign_in("risk-carla")
    past = r.client.get("/inbox?page=9", follow_redirects=False)
    assert past.status_code == 303 and past.headers["location"] == "/inbox?page=2"
    for bad in ("0", "two", "-1"):
        refused = r.client.get(f"/inbox?page={bad}")
        assert refused.status_code == 400 and "is not a page number: give 1 or more" in refused.text
        assert r.journal.entries[-1]["accepted"] is False and r.journal.entries[-1]["field"] == "page"


def test_an_empty_inbox_has_no_pager_and_a_few_items_one_page():
    r = rig()
    many(r, 0)
    r.sign_in("risk-carla")
    empty = r.client.get("/inbox").text
    assert "No promotion waits for an approval by your roles." in empty and "showing" not in empty
    assert r.client.get("/inbox?page=1").status_code == 200
    many(r, 3)
    few = r.client.get("/inbox").text
    assert "showing 1–3 of 3" in few and 'rel="next"' not in few and 'rel="prev"' not in few


def test_a_notices_link_opens_its_promotion_alone_wherever_it_stands_in_the_pages():
    r = rig()
    items = many(r, 120, pm=3)
    r.sign_in("risk-carla")
    far = items[110].run_id  # on page 3
    assert far not in runs_on(r.client.get("/inbox").text)
    alone = r.client.get(f"/inbox?run={far}").text
    assert runs_on(alone) == [far] and "showing" not in alone and 'href="/inbox"' in alone
    gone = r.client.get("/inbox?run=decided-long-ago").text
    assert runs_on(gone) == [] and "does not wait for an approval (any more)" in gone


def test_a_link_to_another_roles_promotion_is_refused_and_recorded():
    r = rig()
    items = many(r, 2, pm=2)
    r.sign_in("risk-carla")
    pm_run = next(i.run_id for i in items if i.run_id.startswith("pm-"))
    refused = r.client.get(f"/inbox?run={pm_run}")
    assert refused.status_code == 403 and "waits for the PM approval; your roles: RISK" in refused.text
    assert r.journal.entries[-1]["accepted"] is False and r.journal.entries[-1]["field"] == "run"
    r.sign_in("audit-ida")  # a reader reads every role's
    assert runs_on(r.client.get(f"/inbox?run={pm_run}").text) == [pm_run]
