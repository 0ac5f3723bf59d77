"""The `type=` of every `lambench` option and argument, and the parser that reports a bad one.

Every value given on the command line is checked here once, as argparse reads it, before any
command runs: numbers are finite and within their range, lists of names hold no empty, duplicate or
whitespace-laden name, devices are ones torch knows, paths point at what the option needs. A bad value
is one line, `lambench: error: OPTION REASON` (exit code 2, never a usage dump or a traceback):

    --timeout must be a finite number > 0 (got 'nan')
    --models names 'dummy' twice
    --cards /tmp/cards/x.yaml: not UTF-8 text (byte 0xff at offset 3)

A validator's reason reads after the option's name; a reason that starts with `--` names its own
options and is shown alone. Validators raise OptionValueError, argparse wraps it in an
ArgumentError, and `parse_arguments` turns that into one LambenchError.
"""

from __future__ import annotations

import argparse
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from lambench_core.errors import LambenchError

DEVICES = "cpu, cuda, cuda:N, mps or auto"
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda|cuda:\d{1,3})$")
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class OptionValueError(argparse.ArgumentTypeError):
    """A bad value; the message reads after the option's name ('must be ...', 'names ... twice')."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and so every subcommand's parser) that raises instead of printing usage
    and exiting: `parse_arguments` makes each problem one line."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        raise LambenchError(message)


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line; a bad value is one LambenchError naming the option."""
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as exc:
        raise LambenchError(describe(exc)) from None


def describe(exc: argparse.ArgumentError) -> str:
    name, message = exc.argument_name, exc.message
    if isinstance(exc.__context__, OptionValueError):
        # the validator's reason: 'must be ...' after the name, or a whole line naming its options
        return message if message.startswith("--") or not name else f"{name} {message}"
    return f"{name}: {message}" if name else message


# --- text ---------------------------------------------------------------------------------------


def invisible(char: str) -> bool:
    """Whitespace, control, format (zero-width, bidi) and separator characters."""
    return char.isspace() or unicodedata.category(char)[0] in "CZ"


def _control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text)


def name(text: str) -> str:
    """One name (a model, dataset, workflow): non-empty, no whitespace or control character."""
    if not text:
        raise OptionValueError("must not be empty")
    if any(invisible(char) for char in text):
        raise OptionValueError(f"must hold no whitespace or control character (got {text!r})")
    return text


def split_names(text: str) -> list[str]:
    """'a,b' or 'a, b' → ['a', 'b']. Raises ValueError (a one-line reason) on an empty list, an empty
    or duplicated name, or a name with whitespace or a control character (a pasted newline)."""
    if not text.strip(" "):
        raise ValueError("must name at least one (got an empty list)")
    parts = text.split(",")
    entries = [parts[0]] + [part.lstrip(" ") for part in parts[1:]]
    seen: set[str] = set()
    for entry in entries:
        if not entry:
            raise ValueError(f"has an empty name in {text!r} (names are separated by single commas)")
        if any(invisible(char) for char in entry):
            raise ValueError(f"has a name with whitespace or a control character: {entry!r}")
        if entry in seen:
            raise ValueError(f"names {entry!r} twice")
        seen.add(entry)
    return entries


def names(text: str) -> str:
    """A comma-separated list of names, checked by split_names; the text is kept (commands split it)."""
    try:
        split_names(text)
    except ValueError as exc:
        raise OptionValueError(str(exc)) from None
    return text


def device(text: str) -> str:
    """cpu, cuda, cuda:N, mps or auto."""
    if not _DEVICE.fullmatch(text):
        raise OptionValueError(f"must be {DEVICES} (got {text!r})")
    return text


def campaign_id(text: str) -> str:
    """Letters, digits, '.', '_' and '-' (it names folders and object-store prefixes)."""
    if not _CAMPAIGN_ID.fullmatch(text):
        raise OptionValueError(
            f"must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit (got {text!r})"
        )
    return text


def cron_schedule(text: str) -> str:
    """Five cron fields (minute hour day month weekday) or a macro such as @daily."""
    fields = text.split(" ")
    if text in _CRON_MACROS or (len(fields) == 5 and all(_CRON_FIELD.fullmatch(field) for field in fields)):
        return text
    raise OptionValueError(
        f"must be five cron fields separated by single spaces, or @daily and the like (got {text!r})"
    )


def timezone(text: str) -> str:
    """An IANA time zone name (UTC, Europe/Paris, ...)."""
    import zoneinfo

    if text == "UTC":
        return text
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if zoneinfo.available_timezones():  # no tz database at all: let the cluster judge
            raise OptionValueError(f"must be an IANA time zone such as UTC or Europe/Paris (got {text!r})") from None
    return text


# --- numbers ------------------------------------------------------------------------------------


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = float(text) if kind is float else int(text)
    except ValueError:
        what = "a number" if kind is float else "a whole number"
        raise OptionValueError(f"must be {what} (got {text!r})") from None
    if not math.isfinite(value):
        raise OptionValueError(f"must be a finite number (got {text!r})")
    return value


def _bounded(
    kind: type[float] | type[int],
    *,
    gt: float | None,
    ge: float | None,
    lt: float | None,
    rule: str | None,
    label: str,
) -> Callable[[str], float]:
    limits = [
        f"{sign} {bound:g}" for sign, bound in ((">", gt), ("≥", ge), ("<", lt)) if bound is not None
    ]
    default_rule = "must be " + " and ".join(limits)

    def check(text: str) -> float:
        value = _number(text, kind)
        below = (gt is not None and not value > gt) or (ge is not None and not value >= ge)
        if below or (lt is not None and not value < lt):
            raise OptionValueError(rule or f"{default_rule} (got {text!r})")
        return value

    check.__name__ = label
    return check


def finite_float(
    *, gt: float | None = None, ge: float | None = None, lt: float | None = None, rule: str | None = None
) -> Callable[[str], float]:
    """A finite float within the bounds; `rule` replaces the out-of-range reason."""
    return _bounded(float, gt=gt, ge=ge, lt=lt, rule=rule, label="finite_float")


def whole_number(*, ge: int, lt: int | None = None, rule: str | None = None) -> Callable[[str], int]:
    """An integer ≥ ge (and < lt where given; no '2.5', no 'inf'); `rule` replaces the out-of-range reason."""
    return _bounded(int, gt=None, ge=ge, lt=lt, rule=rule, label="whole_number")  # type: ignore[return-value]


finite_positive_float = finite_float(gt=0)
positive_int = whole_number(ge=1)
non_negative_int = whole_number(ge=0)


# --- paths --------------------------------------------------------------------------------------


def path(text: str) -> Path:
    """A path: not empty (which would silently mean '.'), no control character."""
    if not text:
        raise OptionValueError("must not be empty")
    if _control(text):
        raise OptionValueError(f"must hold no control character (got {text!r})")
    return Path(text)


def _utf8(file: Path) -> None:
    try:
        file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OptionValueError(
            f"{file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise OptionValueError(f"{file}: cannot be read ({exc.strerror})") from None


def existing_file(text: str) -> Path:
    """A file that exists (a folder is refused)."""
    file = path(text)
    if file.is_dir():
        raise OptionValueError(f"{file}: a folder, not a file")
    if not file.is_file():
        raise OptionValueError(f"{file}: no such file")
    return file


def text_file(text: str) -> Path:
    """An existing UTF-8 file (YAML inputs: manifests, suites, recipes, cluster configurations)."""
    file = existing_file(text)
    _utf8(file)
    return file


def folder(text: str) -> Path:
    """A folder that may not exist yet (it is created) but is not a file."""
    directory = path(text)
    if directory.exists() and not directory.is_dir():
        raise OptionValueError(f"{directory}: a file, not a folder")
    return directory


def cards_folder(text: str) -> Path:
    """An existing folder of model cards, each card (and family module) UTF-8 text."""
    directory = path(text)
    if not directory.exists():
        raise OptionValueError(f"{directory}: no such folder")
    if not directory.is_dir():
        raise OptionValueError(f"{directory}: a file, not a folder of cards")
    for file in sorted([*directory.glob("*.yaml"), *directory.glob("*.py")]):
        _utf8(file)
    return directory


def output_file(text: str) -> Path:
    """A file to write: not a folder, in a folder that exists."""
    file = path(text)
    if file.is_dir():
        raise OptionValueError(f"{file}: a folder, not a file")
    if not file.parent.is_dir():
        raise OptionValueError(f"{file}: no such folder {file.parent}")
    return file


def _local(text: str) -> Path | None:
    """The local path of a store location (a path or file://...); None for other schemes (s3://)."""
    if "://" not in text:
        return path(text)
    if text.startswith("file://"):
        return path(text.removeprefix("file://"))
    if _control(text) or any(char.isspace() for char in text):
        raise OptionValueError(f"must hold no whitespace or control character (got {text!r})")
    return None


def recipe(text: str) -> str:
    """A shipped recipe's name, or the path of a recipe file (a name with a suffix): UTF-8 text."""
    if Path(text).suffix:
        return str(text_file(text))
    return name(text)


def location(text: str) -> str:
    """A folder or store URL to write to (s3://bucket/prefix, file://..., a path): not a file."""
    local = _local(text)
    if local is not None and local.exists() and not local.is_dir():
        raise OptionValueError(f"{local}: a file, not a folder")
    return text


def published_run(text: str) -> str:
    """A published run to read: s3://bucket/prefix, or a folder that exists (a file is refused)."""
    local = _local(text)
    if local is not None:
        if not local.exists():
            raise OptionValueError(f"{local}: no such folder")
        if not local.is_dir():
            raise OptionValueError(f"{local}: a file, not a published run folder")
    return text
