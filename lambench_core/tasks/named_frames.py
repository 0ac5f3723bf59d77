"""Frames of shipped sets that a task's params name as (dataset, frame index), e.g. the structures of
the efficiency sweep and of the MD stability runs, looked up in the campaign's manifest."""

from __future__ import annotations

from lambench_core.data.frames import Frame
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import DIRECTORY_FORMAT, DatasetEntry, ManifestDocument
from lambench_core.errors import InputError, UnknownNameError


class NamedFrames:
    """Looks frames up by dataset name and index in `manifest` (the campaign's, whose digests key the
    task's results), reading each set once; a bad name or index is an InputError naming `source` and
    the params field (`where`), raised before any model call."""

    def __init__(self, manifest: ManifestDocument, source: str) -> None:
        self.source = source
        self.document = manifest
        self._frames: dict[str, list[Frame]] = {}

    def get(self, dataset: str, index: int, where: str) -> tuple[DatasetEntry, Frame]:
        try:
            entry = self.document.get(dataset)
        except UnknownNameError as exc:
            raise InputError(self.source, f"{where}.dataset", str(exc)) from None
        if entry.format == DIRECTORY_FORMAT:
            raise InputError(self.source, f"{where}.dataset", f"{entry.name} is a directory set, not frames")
        if entry.name not in self._frames:
            self._frames[entry.name] = load_frames(self.document, entry)[0]
        frames = self._frames[entry.name]
        if index >= len(frames):
            raise InputError(self.source, f"{where}.frame", f"{entry.name} has {len(frames)} frames, no index {index}")
        return entry, frames[index]
