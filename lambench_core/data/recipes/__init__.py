"""Reproducible recipes that generate labelled benchmark data sets."""
