"""Every page on both databases (the queries are SQLAlchemy Core; histogram buckets, partial
indexes and LIKE escaping differ per dialect), checked against the JSON:API."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from ui_seed import API, RECORDS, seed

from otel_experiments.server.ui.format import number, percent
from server_process import ServerProcess


@pytest.mark.parametrize("backend", ["ui_server", "postgres_ui_server"])
def test_pages_on_each_backend(backend: str, request: pytest.FixtureRequest) -> None:
    server: ServerProcess = request.getfixturevalue(backend)
    with httpx.Client(base_url=server.base_url, timeout=60) as api:
        data = seed(api)
        tag = data.baseline_name.split()[-1]
        summary = api.get(f"{API}/experiments/{data.baseline}/summary").json()["data"]["attributes"]

        listing = api.get("/ui/", params={"q": f"%{tag}"}).text  # a literal % matches nothing
        assert "0 experiments" in listing
        listing = api.get("/ui/", params={"q": tag.upper(), "sort": "name"}).text
        assert "2 experiments" in listing
        assert f'<td class="num span-count">{number(summary["span_count"])}</td>' in listing

        detail = api.get("/ui/experiment", params={"id": data.baseline}).text
        kpi = re.search(r'id="kpi-records">([^<]+)<', detail)
        assert kpi is not None and kpi.group(1) == str(RECORDS)
        error_rate = re.search(r'id="kpi-error-rate">([^<]+)<', detail)
        assert error_rate is not None
        assert error_rate.group(1) == percent(summary["root_spans"]["error_rate"])
        # every score metric's histogram holds all of its values
        for label in ("similarity", "tokens"):
            card = detail.split(f'data-label="{label}"', 1)[1].split("</article>", 1)[0]
            counts = [int(c) for c in re.findall(r"<title>[^<]*: (\d+)</title>", card)]
            assert sum(counts) == RECORDS

        record = data.record_ids[2]
        trace = api.get("/ui/trace", params={"experiment": data.baseline,
                                             "trace": data.trace_of[(data.baseline, record)]})
        assert trace.status_code == 200 and trace.text.count('class="span d') == 2

        deadline = time.monotonic() + 60
        while True:
            compare = api.get("/ui/compare", params=[("id", data.baseline),
                                                     ("id", data.candidate)]).text
            if "data-pending" not in compare:
                break
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert 'class="regression"' in compare and 'class="improvement"' in compare
        # The compare endpoint on the same lean reading (driver cursors on each backend).
        found = api.get(f"{API}/experiments/compare", params={
            "a": data.baseline, "b": data.candidate}).json()["data"]["attributes"]
        assert found["common_records"] == RECORDS and set(found["usage"]) == {"a", "b"}
        shown = re.search(r"(\d+) records in both", compare)
        assert shown is not None and int(shown.group(1)) == RECORDS
