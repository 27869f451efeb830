"""The `imagenet-sketch` command end to end: build, info, verify, peek, and every bad input it must refuse cleanly."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import datasets
import pytest
from PIL import Image

import imagenet_sketch
from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.dataset.cache import prepared_hash
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.sample import sketch_jpeg
from support.archives import class_members, write_zip
from support.interrupts import assert_interrupted, assert_terminated, interrupt, start_cli, terminate, worker_pids

ERROR = "imagenet-sketch: error: "


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith(ERROR), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def assert_nothing_prepared(cache: Path) -> None:
    """Nothing a later `load_dataset("imagenet_sketch")` or `imagenet_sketch.load()` could pick up."""
    assert prepared_hash(str(cache)) is None
    assert not list(cache.rglob("dataset_info.json"))
    assert not list(cache.rglob("*.arrow"))
    assert not [path for path in cache.rglob("*.incomplete") if path.is_dir()]


def stored(cache: Path) -> dict[str, bytes]:
    dataset = imagenet_sketch.load(cache_dir=str(cache)).cast_column("image", datasets.Image(decode=False))
    return {row["image"]["path"]: row["image"]["bytes"] for row in dataset.to_list()}


# --- build, info, verify, peek on good input ---


def test_build_says_what_it_built_and_where(tmp_path, capsys, sample_zip):
    started = time.monotonic()
    code, out, _ = cli(capsys, "build", "--source", str(sample_zip), "--cache-dir", str(tmp_path / "cache"))
    elapsed = time.monotonic() - started
    assert code == 0
    match = re.fullmatch(r"built 31 rows, 6 classes present, ([\d.]+) MB in ([\d.]+) s\nat (\S+)\n", out)
    assert match, out
    where = Path(match[3])
    arrow_bytes = sum(path.stat().st_size for path in where.glob("*.arrow"))
    assert where.is_relative_to(tmp_path / "cache") and (where / "dataset_info.json").exists()
    assert float(match[1]) == pytest.approx(arrow_bytes / 1e6, abs=0.05)
    # The time it reports is that of the build inside this call (not e.g. milliseconds, or since the process began);
    # it is printed to 0.1 s, so it may round up by 0.05.
    assert float(match[2]) <= elapsed + 0.05
    assert len(stored(tmp_path / "cache")) == 31


def test_info_on_the_sample(tmp_path, capsys):
    code, out, _ = cli(capsys, "info", "--sample", "--cache-dir", str(tmp_path / "cache"))
    assert code == 0
    assert out.splitlines()[:7] == [
        "features:",
        "  image: Image",
        "  label: ClassLabel (1000 classes)",
        "  wnid: Value (string)",
        "31 rows: the sample (a few classes; the full release has 50,889 rows)",
        "6 of 1000 classes have images; per class: min 3 (n03710637), median 4, max 12 (n01440764)",
        "994 classes have no images",
    ]
    assert out.splitlines()[7].startswith(f"prepared at {tmp_path / 'cache'}")


def test_info_lists_the_few_missing_classes(tmp_path, capsys):
    wnids = [wnid for wnid in class_table()[0] if wnid not in ("n01443537", "n15075141")]
    archive = write_zip(tmp_path / "998.zip", class_members(wnids, per_class=1))
    code, out, _ = cli(capsys, "info", "--source", str(archive), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0
    assert "998 rows: not the full release" in out
    assert "2 classes have no images: n01443537 (goldfish, Carassius auratus); n15075141 (toilet tissue" in out


def test_verify_the_sample_reports_its_black_image_and_passes(tmp_path, capsys):
    code, out, err = cli(capsys, "verify", "--sample", "--cache-dir", str(tmp_path / "cache"), "--num-proc", "2")
    assert code == 0, err
    assert out.splitlines() == [
        "all black: n03085013/sketch_3.JPEG (every pixel 0; kept, the release has such images)",
        "decoded 31 of 31 images; 0 unreadable, 1 all black",
        "31 rows: the sample (a few classes; the full release has 50,889 rows)",
    ]
    assert "decoding" in err and "31/31" in err  # the progress bar


def test_peek_writes_a_sheet_without_preparing_anything(tmp_path, capsys, sample_zip):
    output = tmp_path / "grid.png"
    argv = ["peek", "--source", str(sample_zip), "--name", "tench", "-n", "5", "-o", str(output)]
    code, out, _ = cli(capsys, *argv, "--cache-dir", str(tmp_path / "cache"))
    assert code == 0
    assert out == f"wrote {output}: 5 of 12 images of n01440764, from {sample_zip}\n"
    with Image.open(output) as sheet:
        assert sheet.format == "PNG" and sheet.width > 4 * 160
    assert_nothing_prepared(tmp_path / "cache")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".grid")] == []


def test_peek_with_no_source_uses_the_prepared_copy(tmp_path, capsys, sample_zip):
    cache = str(tmp_path / "cache")
    assert cli(capsys, "build", "--source", str(sample_zip), "--cache-dir", cache)[0] == 0
    output = tmp_path / "keyboard.png"
    code, out, _ = cli(capsys, "peek", "--wnid", "n03085013", "--cache-dir", cache, "-o", str(output))
    assert code == 0 and out.endswith("5 of 5 images of n03085013, from the prepared dataset\n")
    assert output.exists()


def test_peek_with_an_ambiguous_word_asks_for_a_wnid(tmp_path, capsys):
    code, _, err = cli(capsys, "peek", "--sample", "--name", "maillot", "-o", str(tmp_path / "m.png"))
    assert_one_line_error(code, err, "n03710637 (maillot)", "n03710721 (maillot, tank suit)", "--wnid")
    assert not (tmp_path / "m.png").exists()


def test_peek_into_a_missing_folder_is_an_error(tmp_path, capsys):
    code, _, err = cli(capsys, "peek", "--sample", "-o", str(tmp_path / "no" / "grid.png"))
    assert_one_line_error(code, err, "does not exist")


# --- bad archives: one line, exit 1, nothing prepared ---


def good_zip(tmp_path: Path) -> bytes:
    return write_zip(tmp_path / "good.zip", class_members(["n01440764", "n01443537", "n01484850"])).read_bytes()


def truncated(tmp_path: Path) -> Path:
    content = good_zip(tmp_path)
    path = tmp_path / "ImageNet-Sketch.zip"
    path.write_bytes(content[: len(content) // 2])
    return path


def broken_central_directory(tmp_path: Path) -> Path:
    content = good_zip(tmp_path)
    start, end = content.find(b"PK\x01\x02"), content.rfind(b"PK\x05\x06")
    path = tmp_path / "ImageNet-Sketch.zip"
    path.write_bytes(content[:start] + b"\xff" * (end - start) + content[end:])
    return path


def html_page(tmp_path: Path) -> Path:
    path = tmp_path / "ImageNet-Sketch.zip"
    path.write_text("<!DOCTYPE html>\n<html><body>Sign in to download ImageNet-Sketch.zip</body></html>\n")
    return path


def missing_path(tmp_path: Path) -> Path:
    return tmp_path / "downloads" / "ImageNet-Sketch.zip"


def unknown_wnid(tmp_path: Path) -> Path:
    members = class_members(["n01440764"]) + [("sketch/n99999999/sketch_0.JPEG", b"x")]
    return write_zip(tmp_path / "ImageNet-Sketch.zip", members)


@pytest.mark.parametrize(
    "make, fragments",
    [
        (truncated, ["not a readable zip", "truncated", "download it again"]),
        (broken_central_directory, ["not a readable zip", "download it again"]),
        (html_page, ["not a readable zip", "not a zip at all"]),
        (missing_path, ["does not exist", "downloads/ImageNet-Sketch.zip"]),
        (unknown_wnid, ["folder 'n99999999'", "not one of the 1000 ImageNet-1k wnids"]),
    ],
)
@pytest.mark.parametrize("command", ["build", "info", "verify"])
def test_a_bad_source_is_refused_in_one_line(tmp_path, capsys, make, fragments, command):
    source = make(tmp_path)
    code, out, err = cli(capsys, command, "--source", str(source), "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_error(code, err, *fragments)
    assert out == ""
    assert_nothing_prepared(tmp_path / "cache")


def test_a_bad_source_is_refused_by_peek(tmp_path, capsys):
    code, _, err = cli(capsys, "peek", "--source", str(truncated(tmp_path)), "-o", str(tmp_path / "grid.png"))
    assert_one_line_error(code, err, "not a readable zip")
    assert not (tmp_path / "grid.png").exists()


def escaping_members(tmp_path: Path) -> list[str]:
    return ["../x.JPEG", "sketch/n01440764/../../../x.JPEG", str(tmp_path / "outside" / "x.JPEG")]


@pytest.mark.parametrize("which", range(3))
def test_a_member_escaping_the_archive_is_refused_and_writes_nothing(tmp_path, capsys, monkeypatch, which):
    name = escaping_members(tmp_path)[which]
    archive = write_zip(tmp_path / "evil.zip", class_members(["n01440764"]) + [(name, b"payload")])
    (tmp_path / "outside").mkdir()
    workdir = tmp_path / "run" / "deeper"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)  # relative escapes would land in tmp_path/run or tmp_path
    before = {path for path in tmp_path.rglob("*") if "cache" not in path.parts}
    for command in ("build", "peek"):
        argv = [command, "--source", str(archive), "--cache-dir", str(tmp_path / "cache")]
        code, _, err = cli(capsys, *argv, *(["-o", "grid.png"] if command == "peek" else []))
        assert_one_line_error(code, err, f"'{name}' points outside the archive")
    assert {path for path in tmp_path.rglob("*") if "cache" not in path.parts} == before
    assert not [path for path in tmp_path.rglob("x.JPEG")]
    assert_nothing_prepared(tmp_path / "cache")


# --- damaged members: stored untouched, reported by verify ---


def test_empty_and_non_image_members_are_kept_untouched_and_fail_verify(tmp_path, capsys):
    page = b"<!DOCTYPE html><html>Not found</html>"
    members = class_members(["n01440764"]) + [
        ("sketch/n01440764/sketch_7.JPEG", b""),
        ("sketch/n01440764/sketch_8.JPEG", page),
    ]
    archive = write_zip(tmp_path / "damaged.zip", members)
    cache = tmp_path / "cache"
    code, out, _ = cli(capsys, "build", "--source", str(archive), "--cache-dir", str(cache))
    assert code == 0 and out.startswith("built 5 rows, 1 classes present")
    images = stored(cache)
    assert images["n01440764/sketch_7.JPEG"] == b"" and images["n01440764/sketch_8.JPEG"] == page
    with zipfile.ZipFile(archive) as opened:
        assert images["n01440764/sketch_0.JPEG"] == opened.read("sketch/n01440764/sketch_0.JPEG")

    code, out, err = cli(capsys, "verify", "--source", str(archive), "--cache-dir", str(cache))
    assert out.splitlines() == [
        "unreadable: n01440764/sketch_7.JPEG: empty (0 bytes)",
        "unreadable: n01440764/sketch_8.JPEG: not an image Pillow can identify (37 bytes, starting b'<!DOCTYPE ht')",
        "decoded 3 of 5 images; 2 unreadable, 0 all black",
        "5 rows: not the full release (50,889 rows; 50,884 fewer)",
    ]
    error_line = err.strip().splitlines()[-1]
    assert code == 1 and error_line.startswith(ERROR) and "2 of 5 images cannot be decoded" in error_line
    assert "Traceback" not in err and sum(ERROR in line for line in err.splitlines()) == 1


def test_the_console_script_exits_non_zero_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "imagenet_sketch_tools.cli.main", "build", "--source", str(html_page(tmp_path))],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_DATASETS_CACHE=str(tmp_path / "cache")),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{ERROR}'{tmp_path / 'ImageNet-Sketch.zip'}' is not a readable zip (File is not a zip file); "
        "it may be truncated or not a zip at all: download it again"
    ]
    assert_nothing_prepared(tmp_path / "cache")


# --- command lines argparse refuses: one line, exit 2 ---


@pytest.mark.parametrize(
    "argv, says",
    [
        ([], "the following arguments are required: COMMAND"),
        (["bake"], "argument COMMAND: invalid choice: 'bake'"),
        (["build", "--colour"], "unrecognized arguments: --colour"),
        (["build", "--num-proc", "0"], "argument --num-proc: must be at least 1, got 0"),
        (["export", "--output", "p", "--num-proc", "-2"], "argument --num-proc: must be at least 1, got -2"),
        (["info", "--num-proc", "two"], "argument --num-proc: 'two' is not a whole number"),
        (["build", "--source", "a.zip", "--sample"], "argument --sample: not allowed with argument --source"),
    ],
)
def test_a_refused_command_line_is_one_line_and_exit_2(tmp_path, argv, says):
    """As README says: one line naming what is wrong and where to look (before: usage, then the error, three
    lines), exit 2 as argparse does for a command line it refuses; nothing built."""
    result = subprocess.run(
        [sys.executable, "-m", "imagenet_sketch_tools.cli.main", *argv, *(["--cache-dir", "c"] if argv else [])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(rf"{ERROR}{re.escape(says)}.*; see `imagenet-sketch( \w+)? --help`\n", result.stderr), (
        result.stderr
    )
    assert os.listdir(tmp_path) == []


# --- a full disk during a build: the root cause, in one line ---

NO_SPACE = "the disk is full or a file size limit was reached); nothing was kept: free space there, or give --cache-dir"


def test_a_file_size_limit_during_a_build_names_the_cause_and_the_folder(tmp_path):
    """The kernel refuses a write past RLIMIT_FSIZE with EFBIG (Python ignores SIGXFSZ): a real write error in
    the middle of datasets' Arrow writer (before: `DatasetGenerationError: An error occurred while generating
    the dataset`, the cause unsaid)."""
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(["n01440764", "n02012849"], per_class=40))
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "imagenet_sketch_tools.cli.main", "build", "--source", str(source)]
    limit = 50_000  # bytes per file: the lock files fit, the Arrow shard (~140 KB) does not

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([*argv, "--cache-dir", str(cache)], preexec_fn=limited, capture_output=True, text=True)
    folder = cache / "imagenet_sketch" / "default" / "1.0.0"
    assert_one_line_error(result.returncode, result.stderr.splitlines()[-1], f"could not write to {folder} (EFBIG: ")
    assert NO_SPACE in result.stderr
    assert_nothing_prepared(cache)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="mounts a small tmpfs: needs root")
def test_a_full_disk_during_a_build_names_the_cause_and_the_folder(tmp_path):
    """A real ENOSPC: the cache on a 64 KB tmpfs, mounted in a mount namespace of the command's own (so it goes
    away with it)."""
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(["n01440764", "n02012849"], per_class=40))
    small = tmp_path / "small"
    small.mkdir()
    command = (
        f"mount -t tmpfs -o size=64k tmpfs {small} && exec {sys.executable} -m imagenet_sketch_tools.cli.main "
        f"build --source {source} --cache-dir {small / 'cache'}"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command], capture_output=True, text=True
    )
    folder = small / "cache" / "imagenet_sketch" / "default" / "1.0.0"
    assert_one_line_error(result.returncode, result.stderr.splitlines()[-1], f"could not write to {folder} (ENOSPC: ")
    assert NO_SPACE in result.stderr


# --- Ctrl-C during a build: one line, exit 130, nothing left; the rerun completes ---

CLASSES, PER_CLASS = 300, 20


def big_members(classes: int = CLASSES, per_class: int = PER_CLASS) -> list[tuple[str, bytes]]:
    """300 classes x 20 small sketches; 20 distinct images reused, so generating them stays fast."""
    sketches = [sketch_jpeg(n, "RGB" if n % 2 else "L", (48, 40)) for n in range(per_class)]
    wnids = class_table()[0][:classes]
    return [(f"sketch/{wnid}/sketch_{n}.JPEG", sketches[n]) for wnid in wnids for n in range(per_class)]


def start_build(source: Path | str, cache: Path, *options: str) -> subprocess.Popen:
    return start_cli("build", "--source", str(source), "--cache-dir", str(cache), *options)


def wait_for(process: subprocess.Popen, cache: Path, pattern: str) -> bool:
    """Poll until `pattern` exists in the cache (True) or the build has ended (False)."""
    while not list(cache.glob(pattern)):
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return True


def load_dataset_offline(cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    script = (
        f"import datasets; print(datasets.load_dataset('imagenet_sketch', cache_dir={str(cache)!r}, split='train'))"
    )
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True)


def assert_interrupted_cleanly(code: int, err: str, cache: Path) -> None:
    assert_interrupted(code, err)
    assert_nothing_prepared(cache)


@pytest.mark.slow
def test_ctrl_c_during_a_zip_build(tmp_path, capsys, http_server):
    """The zip is read by ranges from a loopback host that holds the read of the 11th class: the build is then
    always mid-generation, ten classes in, when the interrupt comes (no race with a build that finishes first)."""
    members = big_members(40, 5)
    archive = write_zip(tmp_path / "ImageNet-Sketch.zip", members, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(archive) as opened:
        eleventh_class = opened.getinfo(members[10 * 5][0]).header_offset
    assert eleventh_class < archive.stat().st_size - 70_000  # not in the tail zipfile reads for the directory
    url = http_server.serve("/ImageNet-Sketch.zip", archive)
    http_server.stall("/ImageNet-Sketch.zip", at=eleventh_class)
    cache = tmp_path / "cache"
    process = start_build(url, cache)
    assert http_server.stalled.wait(timeout=300), process.communicate()  # the build is waiting on that read
    assert_interrupted_cleanly(*interrupt(process), cache)
    found = load_dataset_offline(cache, tmp_path)
    assert found.returncode != 0 and "OfflineModeIsEnabled" in found.stderr  # no copy in the cache to fall back on

    http_server.release()
    code, out, _ = cli(capsys, "build", "--source", url, "--cache-dir", str(cache))
    assert code == 0 and out.startswith("built 200 rows, 40 classes present")
    found = load_dataset_offline(cache, tmp_path)
    assert found.returncode == 0 and "num_rows: 200" in found.stdout, found.stderr[-2000:]


@pytest.mark.slow
def test_sigterm_during_a_build_with_two_processes(tmp_path, capsys, http_server):
    """SIGTERM to the command only (as `timeout` or `docker stop` sends it), while a worker's read is held by the
    loopback host: exit 143 with one line, no worker left running (before: they went on under PID 1), nothing
    kept in the cache; the rerun completes."""
    members = big_members(40, 5)
    archive = write_zip(tmp_path / "ImageNet-Sketch.zip", members, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(archive) as opened:
        eleventh_class = opened.getinfo(members[10 * 5][0]).header_offset
    url = http_server.serve("/ImageNet-Sketch.zip", archive)
    http_server.stall("/ImageNet-Sketch.zip", at=eleventh_class)
    cache = tmp_path / "cache"
    process = start_build(url, cache, "--num-proc", "2")
    assert http_server.stalled.wait(timeout=300), process.communicate()  # a worker is waiting on that read
    workers = worker_pids(process.pid)
    code, err, survivors = terminate(process)
    assert len(workers) >= 2, workers
    assert_terminated(code, err, survivors)
    assert_nothing_prepared(cache)

    http_server.release()
    code, out, _ = cli(capsys, "build", "--source", url, "--cache-dir", str(cache), "--num-proc", "2")
    assert code == 0 and out.startswith("built 200 rows, 40 classes present")


@pytest.mark.slow
@pytest.mark.parametrize("num_proc", ["1", "2"])
def test_ctrl_c_while_a_read_stalls(tmp_path, capsys, num_proc):
    """A folder source whose 11th class holds a FIFO: reading it blocks (as a stalled network mount would),
    so the build is always mid-generation, with some classes already written, when the interrupt comes.
    No size is needed for that: 40 classes x 5 images."""
    root = tmp_path / "ImageNet-Sketch"
    for name, content in big_members(40, 5):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    stalled = root / "sketch" / class_table()[0][10] / "sketch_3.JPEG"
    stalled.unlink()
    os.mkfifo(stalled)
    cache = tmp_path / "cache"
    process = start_build(root, cache, "--num-proc", num_proc)
    assert wait_for(process, cache, "imagenet_sketch/default/*/*.incomplete/*.arrow"), process.communicate()
    assert_interrupted_cleanly(*interrupt(process), cache)

    stalled.unlink()
    stalled.write_bytes(sketch_jpeg(3))
    code, out, _ = cli(capsys, "build", "--source", str(root), "--cache-dir", str(cache), "--num-proc", num_proc)
    assert code == 0 and out.startswith("built 200 rows, 40 classes present")
    assert stored(cache)[stalled.parent.name + "/sketch_3.JPEG"] == sketch_jpeg(3)


@pytest.mark.slow
def test_ctrl_c_just_after_the_unfinished_folder_is_made(tmp_path, sample_zip):
    """datasets makes `<dir>.incomplete` just before the `try` that removes it: a Ctrl-C landing in between (which
    the polling test above hits now and then) must not leave it. The real SIGINT is sent at exactly that instant."""
    cache = tmp_path / "cache"
    script = (
        "import os, signal, sys\n"
        "made = os.makedirs\n"
        "def makedirs(path, *args, **kwargs):\n"
        "    made(path, *args, **kwargs)\n"
        "    if str(path).endswith('.incomplete'):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "os.makedirs = makedirs\n"
        "from imagenet_sketch_tools.cli.main import main\n"
        f"sys.exit(main(['build', '--source', {str(sample_zip)!r}, '--cache-dir', {str(cache)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert_interrupted_cleanly(result.returncode, result.stderr, cache)


def test_the_top_level_help_lists_every_command_on_one_line(capsys, monkeypatch):
    from imagenet_sketch_tools.cli.main import COMMANDS

    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps at the terminal's width
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "evaluate ImageNet models" in " ".join(lines[:4])
    for name in COMMANDS:
        [line] = [line for line in lines if line.split()[:1] == [name]]
        index = lines.index(line)
        assert len(line.split()) > 2 and not lines[index + 1].startswith(" " * 14)  # its help, not wrapped
