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


_TITLES = {
    Category.FORCE_FIELD: "Force-field benchmark sets",
    Category.PROPERTY: "Property tasks",
    Category.ADAPTABILITY: "Adaptability tasks",
    Category.EFFICIENCY: "Efficiency",
    Category.STABILITY: "MD stability",
}
