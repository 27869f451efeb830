"""`imagenet-sketch download` and `build` with no source, through the CLI as users run them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.fetch import download
from support.interrupts import assert_interrupted, first_line, interrupt, start_cli, stop_if_running
from support.loopback import HUB_ZIP_PATH


def test_download_from_a_url_checked_against_given_figures(http_server, sample_zip, tmp_path, capsys):
    url = http_server.serve("/a/ImageNet-Sketch.zip", sample_zip)
    output = tmp_path / "got" / "ImageNet-Sketch.zip"
    figures = ["--sha256", file_sha256(sample_zip), "--size", str(sample_zip.stat().st_size)]
    assert cli.main(["download", "--mirror", url, "--output", str(output), *figures]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert output.read_bytes() == sample_zip.read_bytes()


def test_download_of_another_archive_given_only_its_sha256(http_server, sample_zip, tmp_path, capsys):
    url = http_server.serve("/a/other.zip", sample_zip)
    output = tmp_path / "got" / "other.zip"
    # The sha256 describes this archive: the release's size must not refuse it.
    assert cli.main(["download", "--mirror", url, "--output", str(output), "--sha256", file_sha256(sample_zip)]) == 0
    assert output.read_bytes() == sample_zip.read_bytes()
    code = cli.main(["download", "--mirror", url, "--output", str(tmp_path / "bad.zip"), "--sha256", "0" * 64])
    assert code == 1 and "expected " + "0" * 64 in capsys.readouterr().err
    assert not (tmp_path / "bad.zip").exists()


def test_download_mismatch_is_one_line_and_exit_1(http_server, sample_zip, tmp_path, capsys):
    url = http_server.serve("/a/ImageNet-Sketch.zip", sample_zip)
    output = tmp_path / "got" / "ImageNet-Sketch.zip"
    # Without --size/--sha256 the release's figures apply: the sample is not the release.
    assert cli.main(["download", "--mirror", url, "--output", str(output)]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    expected = f"imagenet-sketch: error: 127.0.0.1:{http_server.server.server_address[1]} serves"
    assert error.startswith(expected) and "expected 7,593,573,012" in error
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_build_with_no_source_uses_the_chain(http_server, sample_zip, monkeypatch, capsys):
    http_server.serve(HUB_ZIP_PATH, sample_zip)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    figures = (sample_zip.stat().st_size, file_sha256(sample_zip))
    monkeypatch.setattr(download, "release_checksum", lambda: figures)
    assert cli.main(["build"]) == 0
    assert capsys.readouterr().out.startswith("built ")
    assert download.default_output().is_file()


def test_download_rejects_a_malformed_sha256(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["download", "--sha256", "abc"])
    assert raised.value.code == 2
    assert "'abc' is not a sha256 (64 hexadecimal digits)" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_during_a_download_keeps_nothing_at_the_output_and_the_rerun_resumes(
    http_server, sample_zip, tmp_path, capsys
):
    """A real SIGINT while the host holds the body after its first 1,000 bytes: exit 130 with a line saying the
    `.partial` is kept to resume, no file at --output, and the next run asks for the rest and verifies the whole."""
    url = http_server.serve("/a/ImageNet-Sketch.zip", sample_zip)
    http_server.stall("/a/ImageNet-Sketch.zip", after=1000)
    output = tmp_path / "got" / "ImageNet-Sketch.zip"
    argv = ["download", "--mirror", url, "--output", str(output)]
    figures = ["--sha256", file_sha256(sample_zip), "--size", str(sample_zip.stat().st_size)]
    process = start_cli(*argv, *figures)
    assert http_server.stalled.wait(timeout=300), process.communicate()  # the transfer has begun and is waiting
    partial = Path(f"{output}.partial")
    while not (partial.exists() and partial.stat().st_size == 1000):  # until the client has written what came
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)
    kept = f"imagenet-sketch: interrupted; what arrived is kept in {output}.partial: "
    kept += "run the same command again to resume it"
    assert_interrupted(*interrupt(process), line=kept)  # before: "nothing partial was kept", untrue
    assert not output.exists() and not Path(f"{output}.verified").exists()

    http_server.release()
    assert cli.main([*argv, *figures]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert output.read_bytes() == sample_zip.read_bytes()
    resumed_from = int(http_server.requests[-1][2].removeprefix("bytes=").split("-")[0])
    assert http_server.requests[-1][0] == "GET" and resumed_from == 1000  # what arrived was kept


def test_a_second_download_to_the_same_output_waits_for_the_first(http_server, sample_zip, tmp_path, capsys):
    """Two real processes: while the first holds the transfer (the host stalls after 1,000 bytes), the second
    says in one line which process it waits for; then the first finishes, and the second finds the verified
    zip without asking the server anything (before: both wrote one `.partial`)."""
    url = http_server.serve("/a/ImageNet-Sketch.zip", sample_zip)
    http_server.stall("/a/ImageNet-Sketch.zip", after=1000)
    output = tmp_path / "got" / "ImageNet-Sketch.zip"
    figures = ["--sha256", file_sha256(sample_zip), "--size", str(sample_zip.stat().st_size)]
    first = start_cli("download", "--mirror", url, "--output", str(output), *figures)
    assert http_server.stalled.wait(timeout=300), first.communicate()  # the first holds the lock and the transfer
    second = start_cli("download", "--mirror", url, "--output", str(output), *figures)
    try:
        line = first_line(second)  # the event: the second has found the first at work
        assert re.fullmatch(
            rf"waiting for pid {first.pid} \(main.py download --mirror {url} .*\), downloading {output}\n", line
        )
        http_server.release()  # the first's connection drops; it resumes in the same run
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0 and out.strip() == str(output), err
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0 and out.strip() == str(output), err
    finally:
        stop_if_running(first, second)
    assert output.read_bytes() == sample_zip.read_bytes()
    assert [request[2] for request in http_server.requests] == [None, "bytes=1000-"]  # all asked by the first
    assert sorted(path.name for path in output.parent.iterdir()) == [output.name, output.name + ".verified"]
