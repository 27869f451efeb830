"""The pipeline's manifest: one JSON object per line, appended as work is done, so nothing is lost on a crash.

Every row has `event` and `time`. Paths are relative to the manifest's folder. Events:
- `image` (collect): wnid, query, url, path, sha256, size, mode, width, height
- `flag` (review's pre-filters): path, flags (e.g. ["unreadable"], ["black"], ["duplicate_of:<path>"])
- `decision` (review): path, decision ("reject" or "keep"), reason; the latest decision for a path wins
- `augment` (augment): output, source, transform ("original", "hflip", "vflip", "rot180", "copy"), original
  (the output holding the source), sha256; in OUT_DIR's manifest, output relative to OUT_DIR, source to IN_DIR
- `augment_drop` (augment): source, reason (an image not used: "unreadable: ...", "black: ..." or "over target")
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from imagenet_sketch_tools.common.jsonlines import JsonLines

MANIFEST_NAME = "manifest.jsonl"


class Manifest:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self._lines = JsonLines(self.path)

    def append(self, event: str, **fields: object) -> dict:
        """Add one row and make it durable before returning."""
        row = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
        self._lines.append(row)
        return row

    def rows(self, event: str | None = None) -> Iterator[dict]:
        """The rows in order (a last line cut short by a crash is skipped), all or those of one event."""
        for row in self._lines.rows():
            if event is None or row["event"] == event:
                yield row

    def decisions(self) -> dict[str, str]:
        """The latest decision for each path that has one."""
        return {row["path"]: row["decision"] for row in self.rows("decision")}

    def rejected(self) -> set[str]:
        return {path for path, decision in self.decisions().items() if decision == "reject"}
