"""The user's price table: loading (JSON, TOML, CSV, dict), matching, and cost arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_experiments.pricing import Price, PriceTable, PriceTableError, load_prices

USAGE = [
    {"model": "gpt-4o-2024-08-06", "input_tokens": 1_000_000, "output_tokens": 200_000},
    {"model": "gpt-4o-mini", "input_tokens": 2_000_000, "output_tokens": 0},
    {"model": "mystery-1", "input_tokens": 10, "output_tokens": 5},
    {"model": None, "input_tokens": 7, "output_tokens": 1},
]
TABLE = {"gpt-4o*": {"input": 2.5, "output": 10}, "gpt-4o-mini*": {"input": 0.15, "output": 0.6},
         "exact-model": {"input_per_million": 1, "output_per_million": 2}}


def test_cost_per_model_total_and_unpriced() -> None:
    report = PriceTable(TABLE).cost(USAGE)
    costs = {m.model: m.cost_usd for m in report.by_model}
    assert costs["gpt-4o-2024-08-06"] == pytest.approx(2.5 + 0.2 * 10)  # glob
    assert costs["gpt-4o-mini"] == pytest.approx(2 * 0.15)  # the longer glob wins
    assert costs["mystery-1"] is None and costs[None] is None  # never guessed
    assert report.total_usd == pytest.approx(4.5 + 0.3)
    assert report.unpriced == ["mystery-1", None] and not report.complete
    assert report.to_dict()["by_model"][0]["input_tokens"] == 1_000_000
    assert PriceTable(TABLE).cost(USAGE[:2]).complete


def test_an_exact_name_wins_over_a_glob() -> None:
    table = PriceTable({"gpt-*": {"input": 1, "output": 1}, "gpt-x": {"input": 5, "output": 5}})
    assert table.price_of("gpt-x") == Price(5, 5) and table.price_of("gpt-y") == Price(1, 1)
    assert table.price_of(None) is None and len(table) == 2


@pytest.mark.parametrize("name, text", [
    ("p.json", '{"models": {"gpt-4o*": {"input": 2.5, "output": 10}, '
               '"gpt-4o-mini*": {"input": 0.15, "output": 0.6}}}'),
    ("p.toml", '["gpt-4o*"]\ninput = 2.5\noutput = 10\n\n["gpt-4o-mini*"]\ninput = 0.15\n'
               'output = 0.6\n'),
    ("p.csv", "model,input,output\ngpt-4o*,2.5,10\ngpt-4o-mini*,0.15,0.6\n"),
])
def test_every_file_format_gives_the_same_costs(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    table = load_prices(str(path))
    assert table is not None
    assert table.cost(USAGE).total_usd == pytest.approx(PriceTable(TABLE).cost(USAGE).total_usd)


@pytest.mark.parametrize("name, text, message", [
    ("p.json", '{"m": {"input": 1}}', "needs output"),
    ("p.json", '{"m": {"input": -1, "output": 1}}', ">= 0"),
    ("p.json", '{"m": 3}', "expected"),
    ("p.json", "{nope", "not valid JSON"),
    ("p.csv", "name,input\nm,1\n", "header row"),
    ("p.csv", "model,input,output\nm,cheap,1\n", "not a number"),
    ("p.yaml", "m: 1", ".json, .toml or .csv"),
    ("missing.json", None, "cannot read"),
])
def test_bad_tables_say_what_is_wrong(tmp_path: Path, name: str, text: str | None,
                                      message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(PriceTableError, match=message):
        PriceTable.from_file(path)


def test_load_prices_passes_tables_and_none_through() -> None:
    table = PriceTable(TABLE)
    assert load_prices(table) is table and load_prices(None) is None
    loaded = load_prices({"m": {"input": 1, "output": 1}})
    assert loaded is not None and loaded.price_of("m") == Price(1, 1)


def test_the_server_refuses_to_start_with_an_unreadable_price_table(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from server_process import free_port

    (tmp_path / "prices.json").write_text('{"gpt-4o": {"input": "cheap", "output": 1}}')
    done = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "serve", "--port", str(free_port()),
         "--database-url", f"sqlite:///{tmp_path / 'e.db'}"],
        env={**os.environ, "OTEL_EXPERIMENTS_PRICES": str(tmp_path / "prices.json")},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "OTEL_EXPERIMENTS_PRICES" in done.stderr and "prices.json" in done.stderr
    assert "'cheap' is not a number" in done.stderr


def test_server_settings_read_the_table_from_the_environment(tmp_path: Path) -> None:
    from otel_experiments.server.settings import prices_from_env

    (tmp_path / "p.csv").write_text("model,input,output\nm,1,2\n")
    table = prices_from_env({"OTEL_EXPERIMENTS_PRICES": str(tmp_path / "p.csv")})
    assert table is not None and table.price_of("m") == Price(1, 2)
    assert prices_from_env({}) is None
