"""The one task-category vocabulary: what a task measures, how its metrics are scored and which
leaderboard column group (and engine resources) it belongs to.

The bottom of the house: it imports nothing from lambench_core, so every layer (tasks, dataset
manifests, the metrics table, the site, the engines) can use it.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """A task's category. Its value is the string written in manifests, metrics tables and results;
    the member order is the order the leaderboard shows the groups in."""

    FORCE_FIELD = "force_field"
    PROPERTY = "property"
    ADAPTABILITY = "adaptability"
    EFFICIENCY = "efficiency"
    STABILITY = "stability"

    # Deliberately shadows str.title() with a property (the group heading): mypy rejects any method →
    # property override, and renaming it would change the public API.
    @property
    def title(self) -> str:  # type: ignore[override]
        """The heading of this category's group of benchmarks on the site."""
        return _TITLES[self]

    @property
    def applicability(self) -> bool:
        """Efficiency and stability: measured on the model alone, with no reference labels, so no
        dataset is ever read as their reference data (a manifest entry's `use` is never one of them)."""
        return self in (Category.EFFICIENCY, Category.STABILITY)

    @property
    def start_order(self) -> int:
        """Where this category's steps go in the queue (lower starts first): the long sweeps and MD
        runs start first, so that on few workers no long step is left running alone at the end."""
        return _START_ORDER[self]


_TITLES = {
    Category.FORCE_FIELD: "Force-field benchmark sets",
    Category.PROPERTY: "Property tasks",
    Category.ADAPTABILITY: "Adaptability tasks",
    Category.EFFICIENCY: "Efficiency",
    Category.STABILITY: "MD stability",
}

# Longest jobs first (measured on the default campaign: efficiency 100–120 s, MD 35–60 s, a property
# task 1–20 s, a force-field set 0.1–8 s per model on one CPU thread).
_START_ORDER = {
    Category.EFFICIENCY: 0,
    Category.STABILITY: 1,
    Category.PROPERTY: 2,
    Category.ADAPTABILITY: 3,
    Category.FORCE_FIELD: 4,
}
