"""Append-only JSON lines: a line cut short by a crash is skipped when read and cut off before the next append."""

from __future__ import annotations

import json

import pytest

from imagenet_sketch_tools.common import jsonlines
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.jsonlines import JsonLines


def cut_short(lines: JsonLines, keep: int) -> None:
    """What a crash in the middle of writing the last line leaves: the file ends `keep` bytes into it."""
    content = lines.path.read_bytes()
    last_start = content.rstrip(b"\n").rfind(b"\n") + 1
    lines.path.write_bytes(content[: last_start + keep])


def assert_every_line_is_json(lines: JsonLines) -> None:
    text = lines.path.read_text()
    assert text.endswith("\n")
    for line in text.splitlines():
        json.loads(line)


def test_a_fragment_is_skipped_then_cut_off_before_the_next_append(tmp_path):
    lines = JsonLines(tmp_path / "log.jsonl")
    for n in range(3):
        lines.append({"n": n})
    cut_short(lines, keep=4)
    assert list(lines.rows()) == [{"n": 0}, {"n": 1}]
    lines.append({"n": 3})
    assert list(lines.rows()) == [{"n": 0}, {"n": 1}, {"n": 3}]
    assert_every_line_is_json(lines)


def test_a_file_that_is_only_a_fragment_starts_again_empty(tmp_path):
    lines = JsonLines(tmp_path / "log.jsonl")
    lines.path.write_text('{"n": 0, "pa')
    assert list(lines.rows()) == []
    with lines.appending() as add:
        add({"n": 1})
        add({"n": 2})
    assert list(lines.rows()) == [{"n": 1}, {"n": 2}]
    assert_every_line_is_json(lines)


def test_a_fragment_longer_than_one_tail_read_is_cut_off_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonlines, "TAIL_CHUNK", 16)
    lines = JsonLines(tmp_path / "log.jsonl")
    lines.append({"n": 0})
    lines.append({"n": 1, "text": "x" * 200})
    cut_short(lines, keep=150)
    lines.append({"n": 2})
    assert list(lines.rows()) == [{"n": 0}, {"n": 2}]
    assert_every_line_is_json(lines)


def test_a_line_damaged_in_the_middle_is_named_in_one_line(tmp_path):
    lines = JsonLines(tmp_path / "log.jsonl")
    lines.path.write_text('{"n": 0}\n{"n": 1, "pa{"n": 2}\n{"n": 3}\n')
    with pytest.raises(UserError, match=r"^line 2 of '.*log.jsonl' is not JSON .*fix or delete that line") as raised:
        list(lines.rows())
    assert "\n" not in str(raised.value)
