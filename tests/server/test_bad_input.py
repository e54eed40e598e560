"""Bad input gets a 4xx JSON:API error naming the field, never a 500 (both backends)."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest
from server_helpers import API, events_body, metric, span, uid

JSON = {"content-type": "application/json"}


def _errors(r: httpx.Response, status: int) -> list[dict]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    errors = r.json()["errors"]
    assert errors and all(e["status"] == str(status) for e in errors)
    return errors


def _pointers(r: httpx.Response) -> list[str]:
    return [e.get("source", {}).get("pointer") for e in _errors(r, 400)]


def test_malformed_json_bodies(client: httpx.Client) -> None:
    url = f"{API}/experiments/{uid('exp')}/events"
    for raw in (b"", b"   ", b"{bad", b"[]", b"null", b'{"data": null}', b'{"data": []}',
                b'"text"', b"\xff\xfe", b'{"data": {"type": "experiment_events", "attributes": '
                b'{"spans": [], "metrics": [{"score_value": NaN}]}}}',
                b'{"a": "\\ud800"}', b"[" * 100_000 + b"]" * 100_000):
        r = client.post(url, content=raw, headers=JSON)
        _errors(r, 400)


@pytest.mark.parametrize(("mutate", "pointer"), [
    (lambda s: s.update(span_id="ABC"), "/data/attributes/spans/0/span_id"),
    (lambda s: s.update(trace_id=1), "/data/attributes/spans/0/trace_id"),
    (lambda s: s.update(start_ns=2**70), "/data/attributes/spans/0/start_ns"),
    (lambda s: s.update(duration=-1), "/data/attributes/spans/0/duration"),
    (lambda s: s.update(status="fine"), "/data/attributes/spans/0/status"),
    (lambda s: s.update(tags=["no-colon"]), "/data/attributes/spans/0/tags/0"),
    (lambda s: s.pop("meta"), "/data/attributes/spans/0/meta"),
    (lambda s: s.update(meta=[]), "/data/attributes/spans/0/meta"),
])
def test_invalid_span_names_the_field(client: httpx.Client, mutate, pointer: str) -> None:
    s = span(1)
    mutate(s)
    r = client.post(f"{API}/experiments/{uid('exp')}/events", json=events_body([s]))
    assert pointer in _pointers(r)


def test_invalid_metrics_and_envelope(client: httpx.Client) -> None:
    url = f"{API}/experiments/{uid('exp')}/events"
    m = metric(1, "acc", 0.5)
    m["score_value"] = "high"
    assert "/data/attributes/metrics/0/score_value" in _pointers(client.post(url, json=events_body([], [m])))
    m = metric(1, "acc", 0.5)
    m["metric_type"] = "histogram"
    assert "/data/attributes/metrics/0/metric_type" in _pointers(client.post(url, json=events_body([], [m])))
    m = metric(1, "acc", 0.5)
    m["score_value"] = 2**1100  # too big for a double
    _errors(client.post(url, content=json.dumps(events_body([], [m])), headers=JSON), 400)
    body = events_body([span(1)])
    body["data"]["type"] = "spans"
    assert "/data/type" in _pointers(client.post(url, json=body))
    del body["data"]["attributes"]
    _errors(client.post(url, json={"data": {"type": "experiment_events"}}), 400)


def test_payloads_with_nul_and_unicode_round_trip(client: httpx.Client) -> None:
    exp_id = uid("exp-ü")
    s = span(1, tags=["user.id:ユーザー"])
    s["meta"]["input"] = {"text": "nul \x00 inside, emoji 😀"}
    s["name"] = "name with \x00 NUL"
    m = metric(1, "grade\x00", "cat\x00egory")
    odd = span(2, tags=["user.id:has space", "organization.id:" + "o" * 300,
                        "experiment.name:x"], dataset_record_id="r" * 300)
    r = client.post(f"{API}/experiments/{exp_id}/events", json=events_body([s, odd], [m]))
    assert r.status_code == 202, r.text
    (got,) = client.get(f"{API}/experiments/{exp_id}/events?filter[user_id]=ユーザー").json()["data"]
    assert got["attributes"]["meta"]["input"] == s["meta"]["input"]
    assert got["attributes"]["name"] == s["name"]
    assert got["attributes"]["metrics"] == [m]
    # identities that are not valid ids are kept in the document but not filterable
    everything = client.get(f"{API}/experiments/{exp_id}/events").json()["data"]
    assert everything[1]["attributes"]["tags"] == odd["tags"]
    assert client.get(f"{API}/experiments/{exp_id}/events?filter[user_id]=has%20space").status_code == 400
    summary = client.get(f"{API}/experiments/{exp_id}/summary").json()["data"]["attributes"]
    assert summary["metrics"][0]["value_counts"] == {"cat\ufffdegory": 1}


def test_resource_documents(client: httpx.Client) -> None:
    long_name = "x" * 600
    cases = [
        (f"{API}/projects", {"data": {"attributes": {}}}, "/data/attributes/name"),
        (f"{API}/projects", {"data": {"attributes": {"name": long_name}}}, "/data/attributes/name"),
        (f"{API}/projects", {"data": {"attributes": {"name": "a\x00"}}}, "/data/attributes/name"),
        (f"{API}/projects", {"data": {"attributes": {"name": "n", "description": 5}}},
         "/data/attributes/description"),
        (f"{API}/projects", {"data": [{"attributes": {"name": "n"}}]}, "/data"),
        (f"{API}/projects", {"data": {"type": "dataset", "attributes": {"name": "n"}}}, "/data/type"),
        (f"{API}/projects", {"nodata": 1}, "/data"),
        (f"{API}/datasets", {"data": {"attributes": {"name": "n", "metadata": [1]}}},
         "/data/attributes/metadata"),
        (f"{API}/datasets", {"data": {"attributes": {"name": "n", "project_id": "a b"}}},
         "/data/attributes/project_id"),
        (f"{API}/experiments", {"data": {"attributes": {"name": "n", "config": "x"}}},
         "/data/attributes/config"),
        (f"{API}/experiments", {"data": {"attributes": {"name": "n", "dataset_version": -1}}},
         "/data/attributes/dataset_version"),
        (f"{API}/experiments", {"data": {"id": "x" * 300, "attributes": {"name": "n"}}}, "/data/id"),
        (f"{API}/experiments", {"data": {"attributes": {"name": "n", "status": 3}}},
         "/data/attributes/status"),
    ]
    for url, body, pointer in cases:
        assert pointer in _pointers(client.post(url, json=body)), (url, body)
    ds = client.post(f"{API}/datasets", json={"data": {"attributes": {"name": "n"}}}).json()["data"]
    rec = f"{API}/datasets/{ds['id']}/records"
    assert "/data/attributes/input" in _pointers(client.post(rec, json={"data": {"attributes": {}}}))
    assert "/data/1/id" in _pointers(client.post(rec, json={"data": [
        {"attributes": {"input": 1}}, {"id": "has space", "attributes": {"input": 1}}]}))
    assert "/data/attributes/tags/0" in _pointers(client.post(rec, json={"data": {
        "attributes": {"input": 1, "tags": [1]}}}))
    assert "/data/attributes" in _pointers(client.patch(f"{rec}/r1", json={"data": {"attributes": {}}}))


def test_query_and_path_parameters(client: httpx.Client) -> None:
    for query in ("page[size]=0", "page[size]=100000", "page[size]=x", "page[cursor]=!!!",
                  "page[cursor]=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", "filter[project_id]=a%20b"):
        _errors(client.get(f"{API}/experiments?{query}"), 400)
    _errors(client.get(f"{API}/datasets/ds-1/records?version=-1"), 400)
    for bad_id in ("a%20b", "x" * 300, "%00", "tab%09"):
        _errors(client.get(f"{API}/experiments/{bad_id}/summary"), 400)
        _errors(client.post(f"{API}/experiments/{bad_id}/events", json=events_body([span(1)])), 400)
    _errors(client.put(f"{API}/projects", json={}), 405)
    _errors(client.get(f"{API}/nothing-here"), 404)


def test_body_limits_and_encodings(client: httpx.Client) -> None:
    url = f"{API}/experiments/{uid('exp')}/events"
    big = b'{"data": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    _errors(client.post(url, content=big, headers=JSON), 413)
    # chunked upload without Content-Length is limited while streaming, too
    _errors(client.post(url, content=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                        headers=JSON), 413)
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}", compresslevel=9)
    assert len(bomb) < 200_000
    _errors(client.post(url, content=bomb, headers={**JSON, "content-encoding": "gzip"}), 413)
    _errors(client.post(url, content=b"not gzip", headers={**JSON, "content-encoding": "gzip"}), 400)
    truncated = gzip.compress(json.dumps(events_body([span(1)])).encode())[:-12]
    _errors(client.post(url, content=truncated, headers={**JSON, "content-encoding": "gzip"}), 400)
    _errors(client.post(url, content=b"{}", headers={**JSON, "content-encoding": "br"}), 415)
    good = json.dumps(events_body([span(1)])).encode()
    for encoding, data in (("gzip", gzip.compress(good)), ("deflate", zlib.compress(good))):
        r = client.post(url, content=data, headers={**JSON, "content-encoding": encoding})
        assert r.status_code == 202, r.text


def test_garbage_never_500(client: httpx.Client) -> None:
    exp_id = uid("exp")
    client.post(f"{API}/experiments/{exp_id}/events", json=events_body([span(1)]))
    targets = [("POST", f"{API}/projects"), ("POST", f"{API}/datasets"),
               ("POST", f"{API}/experiments"), ("PATCH", f"{API}/experiments/{exp_id}"),
               ("POST", f"{API}/experiments/{exp_id}/events"), ("POST", "/v1/traces"),
               ("POST", f"{API}/datasets/ds-x/records"), ("PATCH", f"{API}/datasets/ds-x/records/r")]
    garbage = [{"data": {"attributes": {k: v for k in ("name", "input", "status", "config",
                                                      "metadata", "spans", "metrics", "tags")}}}
               for v in (None, 0, -1, 1.5, True, "", "\x00", [], {}, [None], {"a": None}, "x" * 100_000)]
    garbage += [{"data": {"type": t}} for t in (None, 1, [], "experiment_events")]
    for method, url in targets:
        for body in garbage:
            r = client.request(method, url, json=body)
            assert r.status_code < 500, (method, url, body, r.text[:300])


def test_unstorable_values_from_tags_and_numbers(client: httpx.Client) -> None:
    exp_id = uid("exp")
    s = span(1, tags=["experiment.name:bad\x00name", "experiment.feature_slug:has space"])
    r = client.post(f"{API}/experiments/{exp_id}/events", json=events_body([s]))
    assert r.status_code == 202, r.text
    exp = client.get(f"{API}/experiments/{exp_id}").json()["data"]["attributes"]
    assert (exp["name"], exp["feature_slug"]) == (exp_id, None)
    r = client.post(f"{API}/experiments", json={"data": {"attributes": {
        "name": "n", "dataset_version": 2**40}}})
    assert "/data/attributes/dataset_version" in _pointers(r)
    _errors(client.get(f"{API}/datasets/ds-x/records?version={2**40}"), 400)
