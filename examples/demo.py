"""`make demo`: the main job end to end on the embedded default (no account needed).

For now: an example app whose experiment-tagged spans print to the console.
"""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).with_name("existing_setup.py")), run_name="__main__")
