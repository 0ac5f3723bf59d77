"""What the `lambench` commands share: the default models, how a comma-separated list of names is
read, the console they print through, and how a new campaign is named. `cli` and `cluster_cli` both
import this module, not each other (beyond `cli` dispatching to `cluster_cli`'s commands)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from lambench_core.errors import LambenchError
from lambench_core.models.availability import unavailable_reason
from lambench_core.models.catalog import ModelCatalog
from workflows import arguments

# The models a campaign scores when none are named (`lambench run`, export, submit, schedule).
DEFAULT_MODELS = ["dummy", "emt", "chgnet-0.3.0", "sevennet-0"]
# In a list of models, this word stands for every card that runs here without a download.
OFFLINE = "offline"


def split_names(text: str | None) -> list[str] | None:
    """'a,b' or 'a, b' → ['a', 'b']; None when the option was not given (the caller's default then
    applies). An empty list, an empty or repeated name, or a name holding whitespace or a control
    character is a LambenchError: the CLI refuses it as it reads the option (workflows.arguments.names),
    this is for other callers."""
    if text is None:
        return None
    try:
        return arguments.split_names(text)
    except ValueError as exc:
        raise LambenchError(f"list of names {text!r} {exc}") from None


def campaign_models(text: str | None, cards_dirs: Iterable[Path] = ()) -> list[str]:
    """The models a campaign scores: the named ones (DEFAULT_MODELS when none are), with the word
    `offline` replaced by every card whose packages and weights are on this machine, in name order."""
    names = split_names(text) or DEFAULT_MODELS
    if OFFLINE not in names:
        return names
    catalog = ModelCatalog.load(cards_dirs)
    offline = [card.name for card in catalog.cards() if unavailable_reason(card) is None]
    expanded: list[str] = []
    for name in names:
        for model in offline if name == OFFLINE else [name]:
            if model not in expanded:
                expanded.append(model)
    return expanded


def plain_console(**options: Any) -> Console:
    """The console every command prints through. Markup and emoji codes are off, so that text from
    users and models (names, paths, failure reasons holding '[bold]', '[/x' or ':smile:') prints
    exactly as it is; styles are given as rich.text.Text, never as markup in a string."""
    options.setdefault("soft_wrap", True)
    return Console(markup=False, emoji=False, **options)


def new_campaign_id() -> str:
    """A sortable, unique campaign id: the UTC time, then four random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
