"""The verified, resumable transfer, against a loopback server with Range support serving a generated zip."""

from __future__ import annotations

import pytest

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.fetch.download import Expected, MirrorError, default_output, fetch, verified_copy
from support.loopback import RangeServer

PAGE = b"<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body>captive portal</body></html>"


@pytest.fixture
def archive(sample_zip):
    content = sample_zip.read_bytes()
    return content, Expected(len(content), file_sha256(sample_zip))


@pytest.fixture
def folder(tmp_path):
    """An empty download folder (the sample zip lives in tmp_path itself)."""
    (tmp_path / "dl").mkdir()
    return tmp_path / "dl"


def test_full_download_is_verified_and_renamed_into_place(http_server, archive, tmp_path, capsys):
    content, expected = archive
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    output = tmp_path / "new" / "ImageNet-Sketch.zip"
    assert fetch(url, output, expected, mirror="loopback") == output
    assert output.read_bytes() == content
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "ImageNet-Sketch.zip",
        "ImageNet-Sketch.zip.verified",
    ]
    assert http_server.requests == [("GET", "/ImageNet-Sketch.zip", None)]
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("downloaded") and "from loopback" in summary and str(output) in summary


def test_second_call_does_no_network_work(http_server, archive, folder):
    content, expected = archive
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    output = folder / "ImageNet-Sketch.zip"
    fetch(url, output, expected, mirror="loopback")
    http_server.close()  # a request now could not even connect
    assert fetch(url, output, expected, mirror="loopback") == output
    assert len(http_server.requests) == 1


def test_cut_connection_resumes_in_the_same_run(http_server, archive, folder, capsys):
    content, expected = archive
    cut = len(content) // 2
    url = http_server.serve("/ImageNet-Sketch.zip", content, cut_after=cut)
    output = fetch(url, folder / "ImageNet-Sketch.zip", expected, mirror="loopback")
    assert output.read_bytes() == content
    assert [request[2] for request in http_server.requests] == [None, f"bytes={cut}-"]
    assert f"downloaded {len(content) / 1e6:,.1f} MB from loopback" in capsys.readouterr().err


def test_interrupted_run_is_resumed_by_the_next_run(http_server, archive, folder):
    content, expected = archive
    cut = len(content) // 3
    url = http_server.serve("/ImageNet-Sketch.zip", content, cut_after=cut)
    output = folder / "ImageNet-Sketch.zip"
    with pytest.raises(MirrorError, match=f"stopped at {cut:,} bytes.*run the command again"):
        fetch(url, output, expected, mirror="loopback", retries=0)
    assert not output.exists()
    assert (folder / "ImageNet-Sketch.zip.partial").stat().st_size == cut
    fetch(url, output, expected, mirror="loopback", retries=0)
    assert output.read_bytes() == content
    assert http_server.requests[-1] == ("GET", "/ImageNet-Sketch.zip", f"bytes={cut}-")


def test_server_ignoring_range_restarts_from_zero(http_server, archive, folder):
    content, expected = archive
    (folder / "ImageNet-Sketch.zip.partial").write_bytes(b"PK" + b"\0" * 100)  # not even the right bytes
    url = http_server.route("/z.zip", lambda h: h.send_page(200, content, {"Content-Type": "application/zip"}))
    output = fetch(url, folder / "ImageNet-Sketch.zip", expected, mirror="loopback")
    assert output.read_bytes() == content
    assert http_server.requests[0][2] == "bytes=102-"


def test_complete_partial_is_verified_without_a_body(http_server, archive, folder):
    content, expected = archive
    (folder / "ImageNet-Sketch.zip.partial").write_bytes(content)
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    assert fetch(url, folder / "ImageNet-Sketch.zip", expected, mirror="loopback").read_bytes() == content
    assert http_server.requests == [("GET", "/ImageNet-Sketch.zip", f"bytes={len(content)}-")]


def test_checksum_mismatch_names_the_mirror_and_keeps_nothing(http_server, archive, folder):
    content, expected = archive
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    output = folder / "ImageNet-Sketch.zip"
    with pytest.raises(MirrorError, match=r"the file some-mirror served .* has sha256 [0-9a-f]{64}, expected 0{64}"):
        fetch(url, output, Expected(expected.size, "0" * 64), mirror="some-mirror")
    assert list(folder.iterdir()) == []


def test_announced_size_mismatch_stops_before_the_body(http_server, archive, folder):
    content, expected = archive
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    with pytest.raises(MirrorError, match=f"serves {len(content):,} bytes .* expected {len(content) + 1:,}"):
        fetch(url, folder / "ImageNet-Sketch.zip", Expected(len(content) + 1, expected.sha256), mirror="m")
    assert list(folder.iterdir()) == []


def test_html_instead_of_a_zip_is_caught_from_the_bytes(http_server, folder):
    url = http_server.answer("/ImageNet-Sketch.zip", 200, PAGE, content_type="application/octet-stream")
    page = folder.parent / "page.html"
    page.write_bytes(PAGE)
    # Even with the page's own size and checksum, it is not taken for the archive.
    with pytest.raises(MirrorError, match="portal answered .* an HTML page \\('Sign in to the Wi-Fi'\\) instead"):
        fetch(url, folder / "ImageNet-Sketch.zip", Expected(len(PAGE), file_sha256(page)), mirror="portal")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("status", "words"), [(429, "HTTP 429: rate limit"), (403, "HTTP 403: access denied or quota")]
)
def test_rate_limit_answer_is_reported_as_such(http_server, archive, folder, status, words):
    url = http_server.answer("/ImageNet-Sketch.zip", status, b"<html>Too Many Requests</html>")
    with pytest.raises(MirrorError, match=words):
        fetch(url, folder / "ImageNet-Sketch.zip", archive[1], mirror="m")
    assert list(folder.iterdir()) == []


def test_a_wrong_file_the_user_owns_is_left_alone(http_server, archive, folder):
    content, expected = archive
    url = http_server.serve("/ImageNet-Sketch.zip", content)
    mine = folder / "ImageNet-Sketch.zip"
    mine.write_bytes(b"PK my own notes")
    with pytest.raises(UserError, match="already exists but has 15 bytes.*move it away or choose another --output"):
        fetch(url, mine, expected, mirror="m")
    assert mine.read_bytes() == b"PK my own notes"
    assert http_server.requests == []


def test_verified_copy_rehashes_a_file_changed_since(archive, folder):
    content, expected = archive
    path = folder / "ImageNet-Sketch.zip"
    path.write_bytes(content)
    assert verified_copy(path, expected)
    assert (folder / "ImageNet-Sketch.zip.verified").exists()
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # same size, new mtime, one bit off
    with pytest.raises(UserError, match="has sha256"):
        verified_copy(path, expected)


def test_release_figures_and_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_output() == tmp_path / "imagenet_sketch" / "ImageNet-Sketch.zip"
    release = Expected.release()
    assert release == Expected(7_593_573_012, "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed")
    assert Expected.release(sha256="AB" * 32).sha256 == "ab" * 32


def test_unreachable_mirror_says_so(archive, folder):
    server = RangeServer()
    url = server.url + "/ImageNet-Sketch.zip"
    server.close()  # nothing listens on the port any more: the connection is refused
    with pytest.raises(MirrorError, match="could not reach gone .*check the network or try another --mirror"):
        fetch(url, folder / "ImageNet-Sketch.zip", archive[1], mirror="gone", retries=0)
    assert list(folder.iterdir()) == []


def test_an_endless_answer_without_content_length_stops_at_the_expected_size(http_server, archive, folder):
    """A server that sends no Content-Length and never ends its body: the client stops at the expected size,
    hangs up, and keeps nothing (before: it wrote until the disk was full)."""
    content, expected = archive
    url = http_server.endless("/endless.zip", content[:1000])
    output = folder / "ImageNet-Sketch.zip"
    with pytest.raises(MirrorError, match=f"sent more than the expected {expected.size:,} bytes at {url}"):
        fetch(url, output, expected, mirror="loopback", retries=0)
    assert http_server.endless_done.wait(timeout=120)
    assert http_server.endless_ended == "client closed"
    assert sorted(path.name for path in folder.iterdir()) == []


def test_an_endless_answer_stops_at_the_given_size_too(http_server, archive, folder):
    content, _ = archive
    url = http_server.endless("/endless.zip", content[:1000])
    with pytest.raises(MirrorError, match="sent more than the expected 5,000 bytes"):
        fetch(url, folder / "x.zip", Expected(5_000, None), mirror="loopback", retries=0)
    assert http_server.endless_done.wait(timeout=120)
    assert http_server.endless_ended == "client closed"
