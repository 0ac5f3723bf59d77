"""Errors that stop a campaign early with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError


class LambenchError(Exception):
    """Base class of every error lambench raises on purpose."""


class InputError(LambenchError):
    """Bad user input: a malformed card or manifest, an unknown name, an absurd parameter."""

    def __init__(self, source: str | Path, field: str | None, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {message}")


class ChecksumError(InputError):
    """A file's sha256 does not match the one its card or manifest pins."""


class WeightsUnavailableError(LambenchError):
    """A model's weights are not on this machine; the message says where they come from."""


class ModelPackageMissingError(LambenchError):
    """The Python package that runs a model family is not installed."""


class UnknownNameError(LambenchError):
    """A model, dataset or task name that the catalog does not hold; names the known ones."""


class UnknownFamilyError(LambenchError):
    """A model family that no module registered; names the known ones."""


# libyaml's safe loader where PyYAML has it: the same safe subset as yaml.safe_load, parsed about 10×
# faster (a campaign reads every card, the suite and the manifest's entries at each start).
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_parse(text: str) -> object:
    """What yaml.safe_load returns, with SAFE_LOADER (never a loader that builds arbitrary objects)."""
    loader = SAFE_LOADER(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: Path, what: str) -> object:
    """A YAML input file's content; a missing or unparsable file is one InputError naming it."""
    try:
        return _safe_parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(path, None, f"{what} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise InputError(path, None, f"not UTF-8 text (byte 0x{byte:02x} at offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise InputError(path, None, f"not valid YAML ({exc.__class__.__name__})") from None


def first_validation_problem(exc: ValidationError) -> tuple[str, str]:
    """(dotted field, message) of a pydantic error, so the user sees one line, not a dump."""
    problem = exc.errors()[0]
    field = ".".join(str(part) for part in problem["loc"]) or None
    extra = len(exc.errors()) - 1
    message = problem["msg"] + (f" (and {extra} more problem(s))" if extra else "")
    return field or "(top level)", message
