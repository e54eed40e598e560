"""Run metadata as filters on the experiment list: ``filter[where]=PATH=VALUE`` (real server)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import API, uid

from otel_experiments.server.where import as_text, parse_condition


def _create(client: httpx.Client, slug: str, config: dict[str, Any],
            metadata: dict[str, Any]) -> str:
    res = client.post(f"{API}/experiments", json={"data": {"type": "experiments", "attributes": {
        "name": uid("run"), "feature_slug": slug, "config": config, "metadata": metadata}}})
    assert res.status_code == 201, res.text
    return str(res.json()["data"]["id"])


def _ids(client: httpx.Client, slug: str, *where: str, size: int | None = None) -> list[str]:
    params: list[tuple[str, str | int]] = [("filter[feature_slug]", slug)]
    params += [("filter[where]", w) for w in where]
    if size is not None:
        params.append(("page[size]", size))
    out: list[str] = []
    while True:
        res = client.get(f"{API}/experiments", params=params)
        assert res.status_code == 200, res.text
        doc = res.json()
        out += [r["id"] for r in doc["data"]]
        cursor = doc["meta"]["page"]["next_cursor"]
        if cursor is None:
            return out
        params = [p for p in params if p[0] != "page[cursor]"] + [("page[cursor]", cursor)]


def _git(commit: str, dirty: bool) -> dict[str, Any]:
    return {"reproducibility": {"git": {"commit": commit, "dirty": dirty, "branch": "main"}}}


def test_where_filters_config_metadata_and_git(client: httpx.Client) -> None:
    slug = uid("slug")
    a = _create(client, slug, {"model": "gpt-4o", "temperature": 0, "prompt_version": "v1"},
                _git("a" * 40, False))
    b = _create(client, slug, {"model": "gpt-4o", "temperature": 0.5, "prompt_version": "v2"},
                _git("b" * 40, True))
    c = _create(client, slug, {"model": "claude", "temperature": 0, "prompt_version": "v2"},
                {**_git("a" * 40, True), "team": {"name": "search"}})
    assert _ids(client, slug) == [a, b, c]
    assert _ids(client, slug, "config.model=gpt-4o") == [a, b]
    assert _ids(client, slug, "model=gpt-4o") == [a, b]  # alias
    assert _ids(client, slug, "model=gpt-4o", "prompt_version=v2") == [b]  # all must hold
    assert _ids(client, slug, "config.temperature=0") == [a, c]
    assert _ids(client, slug, "config.temperature=0.5") == [b]
    assert _ids(client, slug, "git.dirty=false") == [a]
    assert _ids(client, slug, "git.dirty=true") == [b, c]
    assert _ids(client, slug, "git.commit=" + "a" * 40) == [a, c]
    assert _ids(client, slug, "git.commit=aaaaaaa") == [a, c]  # a prefix, as git takes
    assert _ids(client, slug, "git.commit=aaa") == []  # too short to be a prefix
    assert _ids(client, slug, "metadata.team.name=search") == [c]
    assert _ids(client, slug, "metadata.team=search") == []  # an object never matches
    assert _ids(client, slug, "config.missing=x") == []
    # Pagination walks past non-matching rows and never repeats or skips one.
    assert _ids(client, slug, "config.temperature=0", size=1) == [a, c]


def test_where_filters_page_over_many_rows(client: httpx.Client) -> None:
    slug = uid("slug")
    made = [_create(client, slug, {"model": "m1" if i % 3 == 0 else "m2"}, {}) for i in range(14)]
    assert _ids(client, slug, "model=m1", size=2) == made[::3]
    assert _ids(client, slug, "model=m2", size=4) == [m for i, m in enumerate(made) if i % 3]


@pytest.mark.parametrize("bad", ["config.model", "=x", "model.x=1", "conf.x=1", "config=1",
                                 "metadata..a=1", "config." + "x" * 600 + "=1"])
def test_a_bad_condition_is_a_400_naming_the_parameter(client: httpx.Client, bad: str) -> None:
    res = client.get(f"{API}/experiments", params={"filter[where]": bad})
    assert res.status_code == 400, res.text
    assert res.json()["errors"][0]["source"] == {"parameter": "filter[where]"}


def test_too_many_conditions_is_a_400(client: httpx.Client) -> None:
    res = client.get(f"{API}/experiments",
                     params=[("filter[where]", f"config.k{i}=1") for i in range(21)])
    assert res.status_code == 400


def test_the_openapi_publishes_the_condition_grammar(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"][f"{API}/experiments"]["get"]["parameters"]}
    schema = params["filter[where]"]["schema"]
    assert schema["type"] == "array" and schema["maxItems"] == 20
    assert "config" in schema["items"]["pattern"]


def test_values_are_compared_as_json_writes_them() -> None:
    assert [as_text(v) for v in (True, False, None, 3, 3.0, 0.5, "x", [1], {})] == [
        "true", "false", "null", "3", "3", "0.5", "x", None, None]
    assert parse_condition("git.dirty=false").path == (
        "metadata", "reproducibility", "git", "dirty")
    assert parse_condition("config.a.b=c=d").value == "c=d"  # the first '=' splits


def test_the_web_ui_list_filters_on_run_metadata(client: httpx.Client) -> None:
    slug = uid("slug")
    names = {}
    for model in ("gpt-4o", "claude"):
        res = client.post(f"{API}/experiments", json={"data": {"type": "experiments",
                          "attributes": {"name": f"{slug}-{model}", "feature_slug": slug,
                                         "config": {"model": model}}}})
        assert res.status_code == 201
        names[model] = f"{slug}-{model}"
    page = client.get("/ui/", params={"feature": slug, "where": "model=claude"})
    assert page.status_code == 200
    assert names["claude"] in page.text and names["gpt-4o"] not in page.text
    assert 'value="model=claude"' in page.text  # the form keeps the filter
    both = client.get("/ui/", params={"feature": slug, "where": ""}).text
    assert names["claude"] in both and names["gpt-4o"] in both
    assert client.get("/ui/", params={"where": "nonsense"}).status_code == 400


def test_values_sql_cannot_see_verbatim_still_match(client: httpx.Client) -> None:
    """The LIKE first cut is skipped for values a JSON writer may escape or respell."""
    slug = uid("slug")
    a = _create(client, slug, {"model": "café au lait", "big": 1e16, "n": 3.0}, {})
    assert _ids(client, slug, "model=café au lait") == [a]
    assert _ids(client, slug, "config.big=10000000000000000") == [a]
    assert _ids(client, slug, "config.n=3") == [a]


def test_text_hint_only_for_values_written_alike() -> None:
    from otel_experiments.server.where import text_hint

    assert text_hint(parse_condition("model=gpt-4o")) == ("config", "gpt-4o")
    assert text_hint(parse_condition("git.commit=abc1234")) == ("metadata", "abc1234")
    assert text_hint(parse_condition("config.t=0.5")) == ("config", "0.5")
    for value in ("1e16", "10000000000000000", "café", "a b", 'q"uote'):
        assert text_hint(parse_condition(f"config.x={value}")) is None
