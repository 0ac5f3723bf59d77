"""Datasets and data utilities for lambench."""
