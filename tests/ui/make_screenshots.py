"""Regenerate the web UI screenshots in docs/ from a real demo run (not a test).

Runs ``otel-experiments demo --no-serve`` into a temporary directory, serves its database
with a small price table (so the compare page shows cost beside tokens), and photographs
the experiments list and the comparison of the demo's two variants in headless Debian
chromium (the browser the UI tests drive), at a laptop's width.

    .venv/bin/python tests/ui/make_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/: the server helper
from conftest import CHROMIUM_ARGS, chromium_path
from server_process import ServerProcess

#: USD per 1M tokens for the demo's model: an illustration, not a real price.
PRICES = {"keyword-matcher": {"input": 15, "output": 60}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ui-shots-") as tmp:
        data = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "otel_experiments.cli", "demo", "--no-serve",
                        "--data-dir", str(data)], check=True, stdout=subprocess.DEVNULL)
        prices = Path(tmp) / "prices.json"
        prices.write_text(json.dumps(PRICES))
        env = {**os.environ, "OTEL_EXPERIMENTS_PRICES": str(prices)}
        with ServerProcess(f"sqlite:///{data / 'experiments.db'}", env=env,
                           log_dir=Path(tmp)) as server:
            exps = httpx.get(f"{server.base_url}/api/v2/llm-obs/v1/experiments",
                             timeout=30).json()["data"]
            ids = {e["attributes"]["name"]: e["id"] for e in exps}
            compare = (f"{server.base_url}/ui/compare?id={ids['triage-keywords-v1']}"
                       f"&id={ids['triage-keywords-v2']}")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1366, "height": 800})
                page.goto(f"{server.base_url}/ui/")
                page.screenshot(path=str(args.out / "ui-list.png"), full_page=True)
                deadline = time.monotonic() + 60
                page.goto(compare)
                while "data-pending" in page.content():  # results worked out in the background
                    if time.monotonic() > deadline:
                        raise SystemExit("the compare page never finished")
                    time.sleep(0.5)
                    page.goto(compare)
                page.screenshot(path=str(args.out / "ui-compare.png"), full_page=True)
                browser.close()
    print(f"wrote {args.out / 'ui-list.png'} and {args.out / 'ui-compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
