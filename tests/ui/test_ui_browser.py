"""The web UI in a real headless browser against a real server with real data.

list -> detail -> trace -> compare, every number checked against the JSON:API; hostile
text shown as text and never run; login when the server has keys; a running experiment
refreshing itself. Screenshots land in test-artifacts/ui/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from ui_seed import API, API_KEY, HOSTILE, RECORDS, Seeded, accuracy, failed, outcome, seed

from otel_experiments.server.ui.format import duration, number, percent
from server_process import ServerProcess


def summary_of(api: httpx.Client, exp: str) -> dict[str, Any]:
    response = api.get(f"{API}/experiments/{exp}/summary")
    assert response.status_code == 200, response.text
    attrs: dict[str, Any] = response.json()["data"]["attributes"]
    return attrs


def metric(summary: dict[str, Any], label: str) -> dict[str, Any]:
    return next(m for m in summary["metrics"] if m["label"] == label)


def pass_rate(summary: dict[str, Any], label: str) -> float:
    counts = metric(summary, label)["value_counts"]
    return float(counts.get("true", 0) / (counts.get("true", 0) + counts.get("false", 0)))


def no_script_ran(page: Any) -> None:
    assert page.evaluate("() => window.__pwned === undefined"), "hostile markup executed"
    assert page.dialogs == [] and page.page_errors == []


def test_list_detail_trace_compare(page: Any, ui_server: ServerProcess, api: httpx.Client,
                                   artifacts: Path) -> None:
    data = seed(api)
    base = summary_of(api, data.baseline)
    cand = summary_of(api, data.candidate)

    # list: "/" leads to the UI; filter by name; span counts and metrics as the API says
    page.goto(ui_server.base_url + "/")
    assert page.url.endswith("/ui/")
    page.get_by_label("Name contains").fill(data.baseline_name.split()[-1])
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"q="))
    assert page.locator("#experiment-count").inner_text() == "2 experiments"
    rows = page.locator("table.experiments tbody tr")
    assert rows.count() == 2
    for exp, summary in ((data.baseline, base), (data.candidate, cand)):
        row = page.locator(f'tr[data-experiment-id="{exp}"]')
        assert row.locator(".span-count").inner_text() == number(summary["span_count"])
        shown = row.locator('.metric[data-label="exact_match"] b').inner_text()
        assert shown == percent(pass_rate(summary, "exact_match"))
    page.screenshot(path=str(artifacts / "list.png"), full_page=True)

    # detail: the summary numbers and every record
    page.get_by_role("link", name=data.baseline_name, exact=True).click()
    page.wait_for_url(re.compile(r"/ui/experiment\?id="))
    roots = base["root_spans"]
    assert page.locator("#kpi-records").inner_text() == number(roots["span_count"]) == str(RECORDS)
    assert page.locator("#kpi-spans").inner_text() == number(base["span_count"])
    assert page.locator("#kpi-error-rate").inner_text() == percent(roots["error_rate"])
    assert page.locator("#kpi-p50").inner_text() == duration(roots["latency_ns"]["p50"])
    assert page.locator("#kpi-p95").inner_text() == duration(roots["latency_ns"]["p95"])
    card = page.locator('.metric-card[data-label="similarity"]')
    assert card.locator(".headline .value").inner_text() == number(metric(base, "similarity")["mean"])
    tokens = metric(base, "tokens")
    assert page.locator('.metric-card[data-label="tokens"] .total').inner_text() == \
        number(tokens["mean"] * tokens["count"])
    assert card.locator("svg rect.bar").count() > 0  # a distribution is drawn
    assert page.locator("#config").inner_text().count("m-small") == 1
    assert page.locator(".fact-git-commit").inner_text() == "0123abc"
    assert page.locator("table.records tbody tr").count() == RECORDS
    # records filter: the failing ones only (none in the baseline)
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=error"))
    assert page.locator("table.records tbody tr").count() == roots["error_count"] == 0
    page.go_back()
    page.screenshot(path=str(artifacts / "detail.png"), full_page=True)

    # trace: drill down from record 3's row into its span tree
    record = data.record_ids[3]
    page.get_by_role("link", name=record, exact=True).click()
    page.wait_for_url(re.compile(r"/ui/trace\?"))
    assert data.trace_of[(data.baseline, record)] in page.locator("h1").inner_text()
    spans = page.locator("ol.spans > li")
    assert spans.count() == 2
    assert spans.nth(0).locator(".span-name").inner_text() == "answer"
    assert spans.nth(1).locator(".span-name").inner_text() == "llm-call"
    assert "d1" in (spans.nth(1).get_attribute("class") or "")  # the child is indented
    events = api.get(f"{API}/experiments/{data.baseline}/events",
                     params={"page[size]": 1000}).json()["data"]
    root = next(e["attributes"] for e in events
                if e["attributes"].get("dataset_record_id") == record)
    assert spans.nth(0).locator(".span-duration").inner_text() == duration(root["duration"])
    opened = spans.nth(0).locator("details")
    assert opened.get_attribute("open") is not None
    assert "question 3" in opened.locator("pre.input").inner_text()
    page.screenshot(path=str(artifacts / "trace.png"), full_page=True)

    # compare: tick both on the list, baseline first
    page.goto(ui_server.base_url + f"/ui/?q={data.baseline_name.split()[-1]}&sort=name&order=asc")
    page.locator(f'tr[data-experiment-id="{data.baseline}"] input[type=checkbox]').check()
    page.locator(f'tr[data-experiment-id="{data.candidate}"] input[type=checkbox]').check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/ui/compare\?"))
    row = page.locator('#compare-table tr[data-label="exact_match"]')
    cells = row.locator("td")
    assert cells.nth(0).locator(".value").inner_text() == percent(pass_rate(base, "exact_match"))
    assert cells.nth(1).locator(".value").inner_text() == percent(pass_rate(cand, "exact_match"))
    better = pass_rate(cand, "exact_match") > pass_rate(base, "exact_match")
    winner = cells.nth(1 if better else 0)
    assert "winner" in (winner.get_attribute("class") or "")
    evaluation = page.locator('#compare-table tr[data-label="accuracy"] td .value')
    assert evaluation.all_inner_texts() == [number(accuracy(0)), number(accuracy(1))]
    errors = page.locator('#compare-table tr[data-label="error rate"] td')
    assert "winner" in (errors.nth(0).get_attribute("class") or "")  # lower is better
    assert page.locator(".cards svg").count() >= 3  # a chart per metric
    # records whose outcome changed: regressions first, as the seed made them
    regressed = {data.record_ids[i] for i in range(RECORDS)
                 if (outcome(0, i) and not outcome(1, i)) or failed(1, i)}
    improved = {data.record_ids[i] for i in range(RECORDS)
                if outcome(1, i) and not outcome(0, i) and not failed(1, i)}
    changes = page.locator(f'section.changes[data-experiment-id="{data.candidate}"]')
    # (computed in the background when slow; the page then reloads itself until shown)
    changes.wait_for(timeout=60_000)
    kinds = [(r.get_attribute("data-record-id"), r.get_attribute("class"))
             for r in changes.locator("tbody tr").all()]
    assert [k for _, k in kinds] == ["regression"] * len(regressed) + \
        ["improvement"] * len(improved)
    assert {r for r, k in kinds if k == "regression"} == regressed
    assert {r for r, k in kinds if k == "improvement"} == improved
    assert changes.locator(".n-regression").inner_text() == str(len(regressed))
    page.screenshot(path=str(artifacts / "compare.png"), full_page=True)
    no_script_ran(page)


def test_hostile_text_is_shown_as_text(page: Any, ui_server: ServerProcess, api: httpx.Client,
                                       artifacts: Path) -> None:
    data: Seeded = seed(api)
    page.goto(ui_server.base_url + f"/ui/?q={data.candidate_name.split()[-1]}")
    assert page.get_by_role("link", name=data.candidate_name, exact=True).count() == 1
    no_script_ran(page)
    page.get_by_role("link", name=data.candidate_name, exact=True).click()
    assert page.locator("#exp-title").inner_text().startswith(data.candidate_name)
    assert page.locator("script").count() == 1  # only ui.js
    assert page.locator("main img").count() == 0
    assert any(HOSTILE in t for t in page.locator("td.output").all_inner_texts())
    no_script_ran(page)
    record = data.record_ids[5]
    page.get_by_role("link", name=record, exact=True).click()
    assert page.locator("pre.output").first.inner_text() == HOSTILE
    no_script_ran(page)
    page.goto(ui_server.base_url + f"/ui/compare?id={data.candidate}&id={data.baseline}")
    assert HOSTILE in page.locator("#compare-table thead").inner_text()
    no_script_ran(page)
    page.screenshot(path=str(artifacts / "hostile.png"), full_page=True)


def test_running_experiment_refreshes_itself(page: Any, ui_server: ServerProcess,
                                             api: httpx.Client) -> None:
    exp = f"exp-live-{abs(hash(page)) % 10**8}"
    body = {"data": {"type": "experiment_events", "attributes": {"spans": [], "metrics": []}}}

    def send(i: int) -> None:
        span = {"trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "name": "step",
                "start_ns": 1_790_000_000_000_000_000 + i, "duration": 1_000_000,
                "status": "ok", "meta": {}, "tags": [f"experiment.id:{exp}"]}
        body["data"]["attributes"]["spans"] = [span]
        assert api.post(f"{API}/experiments/{exp}/events", json=body).status_code == 202

    send(0)  # creates the experiment as RUNNING
    page.goto(ui_server.base_url + f"/ui/experiment?id={exp}")
    assert page.locator("#kpi-spans").inner_text() == "1"
    assert page.locator("#auto-refresh").is_checked()
    send(1)
    send(2)
    page.wait_for_function("() => document.querySelector('#kpi-spans').textContent === '3'",
                           timeout=20_000)
    api.patch(f"{API}/experiments/{exp}", json={"data": {"type": "experiments", "attributes": {
        "status": "COMPLETED"}}})
    page.wait_for_function("() => !document.body.hasAttribute('data-refresh')", timeout=20_000)
    assert page.locator("#auto-refresh").count() == 0


def test_login_required_when_the_server_has_keys(page: Any, keyed_server: ServerProcess,
                                                 artifacts: Path) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=keyed_server.base_url, headers=headers, timeout=30) as api:
        data = seed(api)
    secret_name = data.baseline_name

    page.goto(keyed_server.base_url + f"/ui/experiment?id={data.baseline}")
    assert "/ui/login" in page.url
    assert secret_name not in page.content()
    page.get_by_label("API key").fill("wrong-key")
    page.get_by_role("button", name="Log in").click()
    assert "not accepted" in page.get_by_role("alert").inner_text()
    assert secret_name not in page.content()
    page.screenshot(path=str(artifacts / "login.png"))

    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui/experiment\?id="))  # back where the user was going
    assert page.locator("#exp-title").inner_text().startswith(secret_name)
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert API_KEY not in cookie["value"]
    # The session is for pages only: the JSON:API still wants the key itself.
    # (page.request shares the browser context's cookies; the page's CSP forbids fetch.)
    assert page.request.get(keyed_server.base_url + "/ui/").status == 200
    assert page.request.get(
        keyed_server.base_url + f"{API}/experiments/{data.baseline}").status == 401

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto(keyed_server.base_url + "/ui/")
    assert "/ui/login" in page.url and secret_name not in page.content()


def test_login_form_refuses_cross_site_posts(keyed_server: ServerProcess) -> None:
    form = {"api_key": API_KEY, "next": "/ui/"}
    with httpx.Client(base_url=keyed_server.base_url, timeout=30) as client:
        evil = client.post("/ui/login", data=form, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "set-cookie" not in evil.headers
        same = client.post("/ui/login", data=form, headers={"Origin": keyed_server.base_url})
        assert same.status_code == 303 and "set-cookie" in same.headers
        away = client.post("/ui/login", data={**form, "next": "//evil.example/"},
                           headers={"Origin": keyed_server.base_url})
        assert away.headers["location"] == "/ui/"  # never redirected off the server


def test_records_are_paged(ui_server: ServerProcess, api: httpx.Client) -> None:
    exp = f"exp-paged-{abs(hash(api)) % 10**8}"
    spans = [{"trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "name": f"rec-{i}",
              "start_ns": 1_790_000_000_000_000_000 + i, "duration": 1000 + i,
              "status": "error" if i % 10 == 0 else "ok", "tags": [f"experiment.id:{exp}"],
              "meta": {"output": f"out-{i}"}} for i in range(75)]
    body = {"data": {"type": "experiment_events", "attributes": {"spans": spans, "metrics": []}}}
    assert api.post(f"{API}/experiments/{exp}/events", json=body).status_code == 202
    first = api.get(f"/ui/experiment?id={exp}")
    shown = re.findall(r"<td class=\"text output\">out-(\d+)", first.text)
    assert len(shown) == 50
    after = re.search(r'rel="next" href="\?([^"]+)"', first.text)
    assert after is not None
    second = api.get("/ui/experiment?" + after.group(1).replace("&amp;", "&"))
    rest = re.findall(r"<td class=\"text output\">out-(\d+)", second.text)
    assert sorted(map(int, shown + rest)) == list(range(75))
    # bad input is a readable HTML page with a 4xx status, never a 500 or a JSON body
    for bad, status in ((f"/ui/experiment?id={exp}&after=!!", 400), ("/ui/?page=abc", 400),
                        ("/ui/experiment?id=no-such-exp", 404), ("/ui/compare?id=" + exp, 400)):
        answer = api.get(bad)
        assert answer.status_code == status, (bad, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html")
        assert 'class="error" role="alert"' in answer.text
    errors = api.get(f"/ui/experiment?id={exp}&status=error").text
    assert sorted(map(int, re.findall(r"<td class=\"text output\">out-(\d+)", errors))) == \
        [i for i in range(75) if i % 10 == 0]


def test_seed_has_regressions_and_improvements() -> None:
    # The comparison assertions above need both kinds of change to mean anything.
    assert [outcome(1, i) and not outcome(0, i) for i in range(RECORDS)].count(True) == 4
    assert [outcome(0, i) and not outcome(1, i) for i in range(RECORDS)].count(True) == 2
    assert [failed(1, i) for i in range(RECORDS)].count(True) == 1
