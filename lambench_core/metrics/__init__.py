"""Error metrics, normalization and aggregation into the benchmark's scores."""
