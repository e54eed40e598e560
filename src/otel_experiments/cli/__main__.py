"""``python -m otel_experiments.cli``."""

import sys

from . import main

sys.exit(main())
