"""The embedded sample archive: generated once, the same bytes every time, whoever writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imagenet_sketch_tools.dataset.sample import SAMPLE_NAME, sample_archive

WRITER = """
import os, sys
from pathlib import Path
from imagenet_sketch_tools.dataset.sample import sample_archive
folder, go = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):  # every writer starts at the same instant, as two commands run at once would
    pass
print(Path(sample_archive(folder)).stat().st_size)
"""


def test_processes_writing_the_sample_at_once_all_succeed_with_the_same_bytes(tmp_path):
    expected = Path(sample_archive(tmp_path / "alone")).read_bytes()
    for round_ in range(4):  # each round is a fresh folder, so every writer finds no sample and writes it
        folder = tmp_path / f"round{round_}"
        go = tmp_path / f"go{round_}"
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(folder), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for writer in writers:  # each has started and imported
            assert writer.stdout.readline() == "ready\n", writer.communicate()
        go.touch()
        for writer in writers:
            _, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err[-2000:]
        assert (folder / SAMPLE_NAME).read_bytes() == expected
        assert sorted(path.name for path in folder.iterdir()) == [SAMPLE_NAME]
