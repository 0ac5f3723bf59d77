"""Benchmark tasks: one module per task, each registered by name."""
