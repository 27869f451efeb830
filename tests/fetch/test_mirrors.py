"""Each mirror as its service answers (loopback servers speaking Drive's and the hub's protocol), and the chain."""

from __future__ import annotations

import html
import json
import sys
import urllib.parse

import pytest

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.dataset.release import GDRIVE_FILE_ID
from imagenet_sketch_tools.fetch import mirrors
from imagenet_sketch_tools.fetch.download import Expected, MirrorError
from support.loopback import HUB_ZIP_PATH

FILE_ID = GDRIVE_FILE_ID
UUID = "6f3c0b1e-2a4d-4c8e-9b7a-1d2e3f4a5b6c"
# Drive's answer to a file too large to scan, with the form its "Download anyway" button submits (one line, as sent).
WARNING_PAGE = (
    '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body><div class="uc-main">'
    '<div id="uc-text"><p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p>'
    f'<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={FILE_ID}">ImageNet-Sketch.zip</a> '
    "(7.1G)</span> is too large for Google to scan for viruses. Would you still like to download this file?</p>"
    '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
    '<input type="submit" id="uc-download-link" value="Download anyway"/>'
    f'<input type="hidden" name="id" value="{FILE_ID}"><input type="hidden" name="export" value="download">'
    f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{UUID}"></form>'
    "</div></div></body></html>"
)
QUOTA_PAGE = (
    '<html><head><title>Google Drive - Quota exceeded</title></head><body><div class="uc-main"><div id="uc-text">'
    '<p class="uc-error-caption">Sorry, you can&#39;t view or download this file at this time.</p>'
    '<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try '
    "accessing the file again later.</p></div></div></body></html>"
)


@pytest.fixture
def archive(sample_zip):
    return sample_zip.read_bytes(), Expected(sample_zip.stat().st_size, file_sha256(sample_zip))


@pytest.fixture
def output(tmp_path):
    return tmp_path / "dl" / "ImageNet-Sketch.zip"


def serve_drive(server, content: bytes) -> None:
    """Drive's current flow: /uc redirects to drive.usercontent's /download, which wants the form's confirm+uuid."""

    def uc(handler):
        handler.send_page(303, b"", {"Location": f"{server.url}/download?id={handler.query['id']}&export=download"})

    def download(handler):
        if handler.query.get("confirm") == "t" and handler.query.get("uuid") == UUID:
            attachment = 'attachment; filename="ImageNet-Sketch.zip"'
            handler.send_content(content, {"Content-Disposition": attachment})
        else:
            handler.send_page(200, WARNING_PAGE.encode(), {"Content-Type": "text/html; charset=utf-8"})

    server.route("/uc", uc)
    server.route("/download", download)


def test_hub_honours_hf_endpoint_and_hf_token(http_server, archive, output, monkeypatch):
    content, expected = archive
    http_server.serve(HUB_ZIP_PATH, content)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_loopbacktoken")
    assert mirrors.download("hf", output, expected).read_bytes() == content
    assert http_server.requests == [("GET", HUB_ZIP_PATH, None)]
    assert http_server.request_headers[0]["Authorization"] == "Bearer hf_loopbacktoken"


def test_hub_denial_says_how_to_authenticate(http_server, archive, output, monkeypatch):
    http_server.answer(HUB_ZIP_PATH, 401, b'{"error":"Invalid credentials"}', content_type="application/json")
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    with pytest.raises(MirrorError, match=r"hf refused .* \(HTTP 401.* set HF_TOKEN"):
        mirrors.download("hf", output, archive[1])


def test_drive_confirmation_form_then_the_file(http_server, archive, output, monkeypatch):
    content, expected = archive
    serve_drive(http_server, content)
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    assert mirrors.download("gdrive", output, expected).read_bytes() == content
    paths = [urllib.parse.urlsplit(path) for _, path, _ in http_server.requests]
    assert [path.path for path in paths] == ["/uc", "/download", "/download"]
    final = dict(urllib.parse.parse_qsl(paths[-1].query))
    assert final == {"id": FILE_ID, "export": "download", "confirm": "t", "uuid": UUID}


def test_drive_older_flow_with_the_download_warning_cookie(http_server, archive, output, monkeypatch):
    content, expected = archive
    token = "Xy7_"

    def uc(handler):
        cookie = handler.headers.get("Cookie") or ""
        if handler.query.get("confirm") == token and f"download_warning_1={token}" in cookie:
            handler.send_content(content, {"Content-Disposition": 'attachment; filename="ImageNet-Sketch.zip"'})
            return
        link = html.escape(f"/uc?export=download&confirm={token}&id={FILE_ID}")
        page = f'<html><body><a id="uc-download-link" href="{link}">Download anyway</a></body></html>'
        cookies = {"Set-Cookie": f"download_warning_1={token}; Path=/", "Content-Type": "text/html"}
        handler.send_page(200, page.encode(), cookies)

    http_server.route("/uc", uc)
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    assert mirrors.download("gdrive", output, expected).read_bytes() == content
    assert f"confirm={token}" in http_server.requests[-1][1]


def test_drive_resumes_through_the_confirmation(http_server, archive, output, monkeypatch):
    content, expected = archive
    serve_drive(http_server, content)
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    output.parent.mkdir()
    output.with_name(output.name + ".partial").write_bytes(content[:1000])
    assert mirrors.download("gdrive", output, expected).read_bytes() == content
    assert http_server.requests[-1][2] == "bytes=1000-"


@pytest.mark.parametrize("status", [200, 403, 429])
def test_drive_quota_page_is_reported_as_a_quota(http_server, archive, output, monkeypatch, status):
    http_server.answer("/uc", status, QUOTA_PAGE.encode())
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    with pytest.raises(MirrorError, match=f"Google Drive refused the download \\(HTTP {status}: its download quota"):
        mirrors.download("gdrive", output, archive[1])
    assert not output.parent.exists() or not list(output.parent.iterdir())


def test_kaggle_without_credentials_says_how_to_provide_them(tmp_path, monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    with pytest.raises(MirrorError, match="needs Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY") as raised:
        mirrors.download("kaggle")
    assert "kaggle.json" in str(raised.value) and "kagglehub.login()" in str(raised.value)
    (tmp_path / "kaggle").mkdir()
    (tmp_path / "kaggle" / "kaggle.json").write_text(json.dumps({"username": "someone"}))
    with pytest.raises(MirrorError, match="Kaggle credentials are unreadable .*missing 'key'"):
        mirrors.download("kaggle")


def test_chain_moves_on_until_a_mirror_serves_the_file(http_server, archive, output, monkeypatch, capsys):
    content, expected = archive
    http_server.answer(HUB_ZIP_PATH, 429, b"Too Many Requests", content_type="text/plain")
    serve_drive(http_server, content)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    assert mirrors.download(None, output, expected).read_bytes() == content
    assert "mirror hf failed: hf refused the download (HTTP 429: rate limit)" in capsys.readouterr().err
    served = len(http_server.requests)
    assert mirrors.download(None, output, expected) == output  # in place: no mirror asked
    assert len(http_server.requests) == served


def test_chain_failing_everywhere_lists_every_mirror(http_server, archive, output, monkeypatch, tmp_path):
    http_server.answer(HUB_ZIP_PATH, 200, b"<html><title>Portal</title></html>", content_type="text/html")
    http_server.answer("/uc", 200, QUOTA_PAGE.encode())
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "none"))
    with pytest.raises(UserError, match="no mirror could serve") as raised:
        mirrors.download(None, output, archive[1])
    message = str(raised.value)
    assert "hf: hf answered" in message and "HTML page ('Portal')" in message
    assert "gdrive: Google Drive refused" in message and "kaggle: the Kaggle mirror needs Kaggle credentials" in message
    assert not output.exists()


def test_url_mirror_checked_against_given_figures(http_server, archive, output):
    content, expected = archive
    url = http_server.serve("/elsewhere/sketch.zip", content)
    assert mirrors.download(url, output, expected).read_bytes() == content
    with pytest.raises(MirrorError, match=r"the file 127\.0\.0\.1:\d+ served \(.*/elsewhere/sketch\.zip\) has sha256"):
        mirrors.download(url, output.with_name("other.zip"), Expected(expected.size, "1" * 64))


def test_local_file_or_folder_is_used_in_place(http_server, archive, sample_zip, tmp_path):
    content, expected = archive
    assert mirrors.download(str(sample_zip), None, expected) == sample_zip
    assert mirrors.download(str(tmp_path), None, expected) == tmp_path
    with pytest.raises(UserError, match="is not the release archive: it has sha256"):
        mirrors.download(str(sample_zip), None, Expected(expected.size, "2" * 64))
    assert sample_zip.read_bytes() == content
    with pytest.raises(UserError, match="no such file or folder"):
        mirrors.download(str(tmp_path / "missing.zip"))
    assert http_server.requests == []


def test_missing_optional_libraries_name_the_extra(http_server, archive, output, monkeypatch):
    serve_drive(http_server, archive[0])
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)
    for module in ("gdown", "gdown.download", "gdown.exceptions", "kagglehub", "kagglehub.config"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(UserError, match=r"Google Drive mirror needs gdown: pip install 'imagenet-sketch\[download\]'"):
        mirrors.download("gdrive", output, archive[1])
    with pytest.raises(UserError, match=r"Kaggle mirror needs kagglehub: pip install 'imagenet-sketch\[download\]'"):
        mirrors.download("kaggle", output, archive[1])
