"""The site's Jinja2 templates (lambench_core/report/templates/), autoescaped: every model, frame, task
and card string is user text, so escaping is the default and `|safe` is never used on it."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from markupsafe import Markup


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lambench_core.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not an empty cell
    )


def render(template: str, **context: Any) -> Markup:
    """The template's output, marked safe: it was escaped while rendering, so a page template that
    includes it (a view section inside a page) places it as it is instead of escaping it twice."""
    return Markup(environment().get_template(template).render(**context))
