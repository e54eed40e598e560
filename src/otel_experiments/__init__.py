"""otel-experiments."""
