"""lambench core: the science of the benchmark, free of any workflow engine."""

__version__ = "0.1.0"
