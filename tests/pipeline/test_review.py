"""review: the pre-filters on generated images, the JSON API, and the page driven in a real headless Chromium."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.pipeline.collect import Sources, collect
from imagenet_sketch_tools.pipeline.manifest import Manifest
from imagenet_sketch_tools.pipeline.review import Review, make_server

TENCH, GOLDFISH = "n01440764", "n01443537"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def raw(wnid: str, n: int) -> str:
    return f"raw/{wnid}/{n:03d}.jpg"


@pytest.fixture
def collected(tmp_path) -> Path:
    """An OUT_DIR made by collect (folder backend) holding one image of each kind the pre-filters look for."""
    original = sketch_jpeg(1)
    tench = [
        original,
        black_jpeg(),
        sketch_jpeg(2, size=(48, 40)),  # tiny
        original,  # exact duplicate
        jpeg(Image.open(io.BytesIO(original)), quality=45),  # the same sketch re-encoded: a near-duplicate
        sketch_jpeg(3),
        jpeg(Image.new("L", (160, 120), 250)),  # blank paper
        sketch_jpeg(4),  # corrupted on disk below
    ]
    goldfish = [sketch_jpeg(3), sketch_jpeg(10), sketch_jpeg(11)]  # the first is also in tench
    for wnid, images in ((TENCH, tench), (GOLDFISH, goldfish)):
        (tmp_path / "found" / wnid).mkdir(parents=True)
        for n, content in enumerate(images):
            (tmp_path / "found" / wnid / f"{n}.jpg").write_bytes(content)
    out = tmp_path / "out"
    collect(out, [TENCH, GOLDFISH], Sources(["folder"], folder=tmp_path / "found"))
    corrupt = out / raw(TENCH, 7)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    return out


def test_prefilters_flag_what_a_curator_should_look_at(collected):
    review = Review(collected)
    assert review.flags == {
        raw(TENCH, 0): [],
        raw(TENCH, 1): ["black"],
        raw(TENCH, 2): ["tiny"],
        raw(TENCH, 3): [f"duplicate_of:{raw(TENCH, 0)}"],
        raw(TENCH, 4): [f"near_duplicate_of:{raw(TENCH, 0)}"],
        raw(TENCH, 5): [],
        raw(TENCH, 6): ["blank"],
        raw(TENCH, 7): ["unreadable"],
        raw(GOLDFISH, 0): [f"duplicate_of:{raw(TENCH, 5)}"],  # exact duplicates are found across classes
        raw(GOLDFISH, 1): [],
        raw(GOLDFISH, 2): [],
    }
    flag_rows = {row["path"]: row["flags"] for row in Manifest(collected).rows("flag")}
    assert flag_rows == {path: flags for path, flags in review.flags.items() if flags}
    Review(collected)  # reopening adds no rows when nothing changed
    assert len(list(Manifest(collected).rows("flag"))) == len(flag_rows)


def test_images_are_decoded_once_per_version_and_a_changed_file_is_checked_again(collected):
    cache = collected / ".review" / "analysis.jsonl"
    Review(collected)
    assert len(cache.read_text().splitlines()) == 11
    Review(collected)
    assert len(cache.read_text().splitlines()) == 11  # nothing decoded again
    (collected / raw(GOLDFISH, 2)).write_bytes(black_jpeg(size=(200, 100)))  # the file changes after review
    review = Review(collected)
    assert len(cache.read_text().splitlines()) == 12 and review.flags[raw(GOLDFISH, 2)] == ["black"]
    latest_flags = {row["path"]: row["flags"] for row in Manifest(collected).rows("flag")}
    assert latest_flags[raw(GOLDFISH, 2)] == ["black"]


@pytest.fixture
def served(collected):
    review = Review(collected)
    server = make_server(review, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", review
    server.shutdown()
    server.server_close()


def page_token(url: str) -> str:
    """The token the served page carries, read from the page as its script reads it."""
    with urllib.request.urlopen(url + "/") as response:
        found = re.search(r'<meta name="review-token" content="([^"]+)">', response.read().decode())
    assert found, "the page carries no token"
    return found[1]


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    """A request as the served page makes it: JSON, with the page's token on every POST."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if body is not None:
        headers["X-Review-Token"] = page_token(url.split("/api/")[0])
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_api_saves_decisions_before_answering_and_refuses_what_it_should(served, collected):
    url, review = served
    assert review.out_dir == collected and url.startswith("http://127.0.0.1:")
    status, classes = call(url + "/api/classes")
    assert status == 200 and [(c["wnid"], c["images"], c["undecided"]) for c in classes["classes"]] == [
        (TENCH, 8, 8),
        (GOLDFISH, 3, 3),
    ]
    status, row = call(url + "/api/decision", {"path": raw(TENCH, 1), "decision": "reject", "reason": "unusable"})
    assert status == 200 and row["decision"] == "reject"
    assert list(Manifest(collected).rows("decision"))[-1] == row  # in the manifest by the time the answer came
    assert call(url + "/api/decision", {"path": raw(TENCH, 2), "decision": "reject"})[0] == 400  # no reason
    assert call(url + "/api/decision", {"path": "manifest.jsonl", "decision": "keep"})[0] == 400
    assert call(url + "/thumb?path=../../etc/passwd")[0] == 404  # only collected images are served
    assert call(url + f"/thumb?path={raw(TENCH, 7)}")[0] == 422  # the corrupted one
    with urllib.request.urlopen(url + f"/thumb?path={raw(TENCH, 0)}") as response:
        assert Image.open(io.BytesIO(response.read())).format == "JPEG"
    _, tench = call(url + f"/api/class?wnid={TENCH}")
    assert [image["decision"] for image in tench["images"]][:3] == [None, "reject", None]
    assert tench["query"] == "sketch of tench"


@pytest.mark.parametrize(
    "api, body",
    [
        ("decision", json.dumps({"path": [raw(TENCH, 1)], "decision": "keep"}).encode()),  # a list
        ("decision", json.dumps({"path": {"p": raw(TENCH, 1)}, "decision": "keep"}).encode()),  # an object
        ("decision", json.dumps({"path": raw(TENCH, 1), "decision": ["keep"]}).encode()),
        ("decision", json.dumps({"path": raw(TENCH, 1), "decision": "reject", "reason": 7}).encode()),
        ("decision", b"[" * 100_000 + b"]" * 100_000),  # deeper than the JSON parser's recursion limit
        ("decision", json.dumps([raw(TENCH, 1), "keep"]).encode()),  # not an object
        ("decision", b"path=raw/n01440764/001.jpg&decision=keep"),  # not JSON
        ("decision", b"\xff\xfe not UTF-8"),
        ("keep-rest", json.dumps({"wnid": [TENCH]}).encode()),
        ("keep-rest", json.dumps({"wnid": {"$ne": ""}}).encode()),
    ],
)
def test_a_malformed_body_is_answered_400_and_changes_nothing(served, collected, api, body):
    """Before: a `path` that is a list or an object, or deeply nested JSON, raised in the handler: the connection
    dropped unanswered and a traceback was printed."""
    url, _ = served
    port = url.rsplit(":", 1)[1]
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json", "X-Review-Token": page_token(url)}
    status, answer = raw_request(url, "POST", f"/api/{api}", headers, body)
    assert status == 400 and json.loads(answer)["error"], answer
    assert list(Manifest(collected).rows("decision")) == []
    assert call(url + "/api/classes")[0] == 200  # the server still answers


def raw_request(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request with exactly these headers (Host included), as a hostile page or a rebound DNS name sends it."""
    port = int(url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_forged_post_changes_nothing(served, collected):
    url, review = served
    token, host = page_token(url), url.removeprefix("http://")
    decision = json.dumps({"path": raw(TENCH, 0), "decision": "reject", "reason": "irrelevant"}).encode()
    before = (collected / "manifest.jsonl").read_bytes()
    forged = [
        # what any web page can send without a preflight: a text/plain "simple" request from its own origin
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
        {"Content-Type": "application/json"},  # no token
        {"Content-Type": "application/json", "X-Review-Token": "guessed"},
        {"Content-Type": "application/json", "X-Review-Token": token, "Origin": "http://evil.example"},
        {"Content-Type": "text/plain", "X-Review-Token": token},  # the token alone is not enough either
    ]
    for headers in forged:
        for path, body in (("/api/decision", decision), ("/api/keep-rest", json.dumps({"wnid": TENCH}).encode())):
            status, answer = raw_request(url, "POST", path, {"Host": host, **headers}, body)
            assert status == 403 and json.loads(answer)["error"].startswith("forbidden"), (headers, answer)
    assert (collected / "manifest.jsonl").read_bytes() == before
    assert review.decisions == {} and call(url + f"/api/class?wnid={TENCH}")[1]["images"][0]["decision"] is None
    # the page's own request, with the same body, is taken: the refusals above were about who asked
    status, _ = raw_request(
        url,
        "POST",
        "/api/decision",
        {"Host": host, "Content-Type": "application/json", "X-Review-Token": token},
        decision,
    )
    assert status == 200 and Manifest(collected).rejected() == {raw(TENCH, 0)}


def test_a_foreign_host_is_refused_for_every_request(served, collected):
    url, _ = served
    port, token = url.rsplit(":", 1)[1], page_token(url)
    before = (collected / "manifest.jsonl").read_bytes()
    post = {"Content-Type": "application/json", "X-Review-Token": token}
    decision = json.dumps({"path": raw(TENCH, 0), "decision": "reject", "reason": "irrelevant"}).encode()
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{int(port) + 1}", ""):  # DNS rebinding, etc.
        for method, path in (("GET", "/"), ("GET", "/api/classes"), ("GET", f"/thumb?path={raw(TENCH, 0)}")):
            status, answer = raw_request(url, method, path, {"Host": host})
            assert status == 403 and token.encode() not in answer, (host, path)
        assert raw_request(url, "POST", "/api/decision", {"Host": host, **post}, decision)[0] == 403
    assert (collected / "manifest.jsonl").read_bytes() == before
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert raw_request(url, "GET", "/api/classes", {"Host": host})[0] == 200


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (apt-get install -y chromium)")
def test_curator_session_in_a_real_browser_is_saved_and_shown_again(served, collected, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        # Each wait below is for an event (text on the page); the bound (Playwright's default: 5 s) only ends a hang,
        # and on a loaded machine a browser can take longer than that to draw what is already sent.
        page.set_default_timeout(300_000)
        expect.set_options(timeout=300_000)
        page.goto(url)
        expect(page.locator("#title")).to_contain_text(f"tench, Tinca tinca ({TENCH}), class 1 of 2")
        expect(page.locator("#query")).to_have_text('searched for "sketch of tench"')
        cards = page.locator(".card")
        expect(cards).to_have_count(8)
        expect(page.locator(f'.card[data-path="{raw(TENCH, 1)}"] .badge')).to_have_text("black")
        expect(page.locator(f'.card[data-path="{raw(TENCH, 4)}"] .badge')).to_have_text("near-duplicate of 000.jpg")

        cards.nth(1).click()  # reason: the default, irrelevant
        expect(page.locator("#status")).to_have_text("saved: reject 001.jpg")
        page.get_by_label("2 similar class").check()
        cards.nth(2).click()
        expect(page.locator("#status")).to_have_text("saved: reject 002.jpg")
        page.keyboard.press("3")  # reason: duplicate
        page.keyboard.press("j")  # cursor from 002 to 003
        page.keyboard.press("x")
        expect(page.locator("#status")).to_have_text("saved: reject 003.jpg")
        expect(page.locator(".card.reject")).to_have_count(3)
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        page.keyboard.press("n")
        expect(page.locator("#title")).to_contain_text(f"goldfish, Carassius auratus ({GOLDFISH}), class 2 of 2")
        browser.close()

    decisions = [(row["path"], row["decision"], row["reason"]) for row in Manifest(collected).rows("decision")]
    assert decisions[:3] == [
        (raw(TENCH, 1), "reject", "irrelevant"),
        (raw(TENCH, 2), "reject", "similar class"),
        (raw(TENCH, 3), "reject", "duplicate"),
    ]
    assert decisions[3:] == [(raw(TENCH, n), "keep", "") for n in (0, 4, 5, 6, 7)]  # N kept what was left
    assert Manifest(collected).rejected() == {raw(TENCH, 1), raw(TENCH, 2), raw(TENCH, 3)}

    with sync_playwright() as playwright:  # a new browser: everything shown comes from the manifest
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        expect(page.locator("#title")).to_contain_text(GOLDFISH)  # the first class with undecided images
        page.keyboard.press("p")
        expect(page.locator("#title")).to_contain_text(TENCH)
        rejected = page.locator(".card.reject")
        expect(rejected).to_have_count(3)
        assert [rejected.nth(i).get_attribute("data-reason") for i in range(3)] == [
            "irrelevant",
            "similar class",
            "duplicate",
        ]
        expect(page.locator(".card.keep")).to_have_count(5)
        expect(page.locator("#counts")).to_have_text("8 images, 3 rejected, 0 undecided")
        browser.close()


def test_cli_review_says_what_is_missing_in_one_line(tmp_path, served, capsys):
    from imagenet_sketch_tools.cli.main import main

    assert main(["review", str(tmp_path / "empty")]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"imagenet-sketch: error: no collected images in {tmp_path / 'empty'}; " + (
        f"run `imagenet-sketch collect {tmp_path / 'empty'}` first"
    )
    url, review = served
    busy_port = url.rsplit(":", 1)[1]
    assert main(["review", str(review.out_dir), "--port", busy_port]) == 1
    assert f"cannot listen on 127.0.0.1:{busy_port}" in capsys.readouterr().err
