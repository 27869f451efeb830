"""Hostile sources, run through the real commands in subprocesses: zip bombs, devices, FIFOs, links out of a folder.

Each must be refused with one line, with the child's peak RSS under 1 GB (ru_maxrss of the child, measured by a
wrapper process of its own so no other test's children count).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imagenet_sketch_tools.dataset.classes import class_table
from support.archives import Listed, class_members, crafted_zip, deflated_stream, local_record, stored_stream

GIB = 1 << 30
# The child may not map more than this: a regression fails on its own instead of taking the machine with it.
ADDRESS_SPACE = 3 * GIB
# Runs `argv` (after the output file) as its child, then writes the child's exit status and peak RSS there.
MEASURED = """
import json, resource, subprocess, sys
limit = lambda: resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
code = subprocess.run(sys.argv[2:], preexec_fn=limit).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
open(sys.argv[1], "w").write(json.dumps({{"code": code, "peak": peak}}))
"""
# A guard against a hang (a FIFO opened before the fix); no assertion depends on how long anything takes.
HANG_GUARD = 600
WNIDS = list(class_table()[0])


def run_measured(tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS in bytes) of `imagenet-sketch ARGS` run in a fresh process."""
    figures = tmp_path / "figures.json"
    command = [sys.executable, "-c", MEASURED.format(space=ADDRESS_SPACE), str(figures)]
    command += [sys.executable, "-m", "imagenet_sketch_tools.cli", *args]
    # A session of its own, so a hang ends with the command as well as its wrapper, not as an orphan.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    try:
        _, err = process.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    measured = json.loads(figures.read_text())
    return measured["code"], err, measured["peak"]


def assert_one_line_refusal(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("imagenet-sketch: error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert all(fragment in errors[0] for fragment in fragments), err


# --- zip bombs ---


def overlapping(path: Path) -> Path:
    """200 entries claiming one 8 MiB stream of zeros: 1.68 GB announced by an 8 KB zip."""
    names = [f"sketch/n01440764/sketch_{n}.JPEG" for n in range(200)]
    return crafted_zip(path, [deflated_stream(bytes(8 << 20))], [Listed(name, 0) for name in names])


def nested(path: Path) -> Path:
    """A stored member whose bytes hold a whole second member, listed on its own as well."""
    outer, inner = "sketch/n01440764/sketch_0.JPEG", "sketch/n01440764/sketch_1.JPEG"
    stream = deflated_stream(bytes(8 << 20))
    entries = [Listed(outer, 0), Listed(inner, 0, 30 + len(outer), stream)]
    return crafted_zip(path, [stored_stream(local_record(inner, stream))], entries)


def high_ratio(path: Path) -> Path:
    """100 members of 8 MiB of zeros, one per class, none overlapping: 839 MB from 830 KB."""
    stream = deflated_stream(bytes(8 << 20))
    names = [f"sketch/{wnid}/sketch_0.JPEG" for wnid in WNIDS[:100]]
    return crafted_zip(path, [stream] * len(names), [Listed(name, n) for n, name in enumerate(names)])


def many(path: Path) -> Path:
    """20,000 members of 64 KiB of zeros, 20 in each class: 1.3 GB from 5 MB, no member past any per-member cap."""
    stream = deflated_stream(bytes(64 << 10))
    names = [f"sketch/{wnid}/sketch_{n}.JPEG" for wnid in WNIDS for n in range(20)]
    return crafted_zip(path, [stream] * len(names), [Listed(name, n) for n, name in enumerate(names)])


BOMBS = {"overlapping": overlapping, "nested": nested, "high_ratio": high_ratio, "many": many}
COMMANDS = {
    "build": lambda source, tmp: ["build", "--source", str(source), "--cache-dir", str(tmp / "cache")],
    "verify": lambda source, tmp: ["verify", "--source", str(source), "--cache-dir", str(tmp / "cache")],
    "peek": lambda source, tmp: ["peek", "--source", str(source), "--output", str(tmp / "grid.png")],
    "audit": lambda source, tmp: ["audit", str(source), "--output", str(tmp / "audit.csv")],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bomb", BOMBS)
def test_a_zip_bomb_is_refused_in_one_line_with_bounded_memory(tmp_path, bomb, command):
    source = BOMBS[bomb](tmp_path / "bomb.zip")
    code, err, peak = run_measured(tmp_path, *COMMANDS[command](source, tmp_path))
    assert_one_line_refusal(code, err, "bomb.zip")
    assert peak < GIB, f"peak RSS {peak / 1e6:.0f} MB"
    assert not list(tmp_path.rglob("*.arrow")) and not (tmp_path / "grid.png").exists()
    assert not (tmp_path / "audit.csv").exists()


def test_a_member_whose_local_header_moves_its_data_into_the_next_is_refused(tmp_path):
    from imagenet_sketch_tools.common.errors import UserError
    from imagenet_sketch_tools.dataset.archive import open_archive

    members = class_members(["n01440764"], per_class=2)
    path = crafted_zip(
        tmp_path / "a.zip",
        [deflated_stream(content) for _, content in members],
        [Listed(name, n) for n, (name, _) in enumerate(members)],
    )
    data = bytearray(path.read_bytes())
    data[28:30] = (40).to_bytes(2, "little")  # the first local header announces an extra field it does not have
    path.write_bytes(bytes(data))
    reader = open_archive(str(path))
    with pytest.raises(UserError, match="sketch_0.JPEG' of .* overlaps the next"):
        list(reader.read(reader.members()))


def test_the_limits_can_be_raised_for_a_trusted_archive(tmp_path, monkeypatch):
    from imagenet_sketch_tools.common.errors import UserError
    from imagenet_sketch_tools.dataset.archive import open_archive

    # 80 MB of zeros from 260 KB: past the default ratio, inside a raised one.
    stream = deflated_stream(bytes(64 << 10))
    names = [f"sketch/{wnid}/sketch_{n}.JPEG" for wnid in WNIDS[:60] for n in range(20)]
    source = str(crafted_zip(tmp_path / "a.zip", [stream] * len(names), [Listed(n, i) for i, n in enumerate(names)]))
    with pytest.raises(UserError, match="IMAGENET_SKETCH_MAX_RATIO"):
        open_archive(source).members()
    monkeypatch.setenv("IMAGENET_SKETCH_MAX_RATIO", "1000")
    assert len(open_archive(source).members()) == len(names)
    monkeypatch.setenv("IMAGENET_SKETCH_MAX_INFLATED_GB", "0.05")
    with pytest.raises(UserError, match="50,000,000 allowed"):
        open_archive(source).members()
    monkeypatch.setenv("IMAGENET_SKETCH_MAX_INFLATED_GB", "lots")
    with pytest.raises(UserError, match="IMAGENET_SKETCH_MAX_INFLATED_GB='lots' is not a positive number"):
        open_archive(source).members()


# --- sources that are not a zip or a folder, and folders that point out of themselves ---


def test_a_device_is_refused_before_it_is_read(tmp_path):
    code, err, peak = run_measured(tmp_path, "build", "--source", "/dev/zero", "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_refusal(code, err, "'/dev/zero' is not a regular file or a folder")
    assert peak < GIB


def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    fifo = tmp_path / "ImageNet-Sketch.zip"
    os.mkfifo(fifo)  # nothing ever writes to it: opening it to read would block for good
    code, err, _ = run_measured(tmp_path, "build", "--source", str(fifo), "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_refusal(code, err, "is not a regular file or a folder")


def folder_with_link(root: Path, target: Path) -> Path:
    for name, content in class_members(["n01440764"], per_class=2):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "sketch/n01440764/sketch_2.JPEG").symlink_to(target)
    return root


@pytest.mark.parametrize("command", ["build", "verify", "peek", "audit", "package"])
def test_a_link_out_of_a_folder_source_is_refused_and_named(tmp_path, command):
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    source = folder_with_link(tmp_path / "folder", secret)
    args = {
        **{name: make(source, tmp_path) for name, make in COMMANDS.items()},
        "package": ["package", str(source), "--output", str(tmp_path / "out.zip")],
    }[command]
    code, err, _ = run_measured(tmp_path, *args)
    assert_one_line_refusal(code, err, "sketch_2.JPEG", "outside the folder")
    assert not list(tmp_path.rglob("*.arrow")) and not (tmp_path / "out.zip").exists()


def test_a_link_inside_the_folder_is_read(tmp_path):
    from imagenet_sketch_tools.dataset.archive import open_archive

    source = folder_with_link(tmp_path / "folder", tmp_path / "folder/sketch/n01440764/sketch_0.JPEG")
    reader = open_archive(str(source))
    read = {member.path: content for member, content in reader.read(reader.members())}
    assert read["n01440764/sketch_2.JPEG"] == read["n01440764/sketch_0.JPEG"] and len(read) == 3
