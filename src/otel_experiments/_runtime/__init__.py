"""Process plumbing shared by every layer: env parsing, throttled logs, fork hooks, text.

Imports nothing from the rest of the package except :mod:`otel_experiments.attributes`.
"""
