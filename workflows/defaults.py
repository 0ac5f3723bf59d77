"""What the `lambench` commands share: the default models, how a comma-separated list of names is
read, and how a new campaign is named. `cli` and `cluster_cli` both import this module, not each other
(beyond `cli` dispatching to `cluster_cli`'s commands)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

# The models a campaign scores when none are named (`lambench run`, export, submit, schedule).
DEFAULT_MODELS = ["dummy", "emt", "chgnet-0.3.0", "sevennet-0"]


def split_names(text: str | None) -> list[str] | None:
    """'a, b,,c' → ['a', 'b', 'c']; None when nothing is named (the caller's default then applies)."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def new_campaign_id() -> str:
    """A sortable, unique campaign id: the UTC time, then four random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
