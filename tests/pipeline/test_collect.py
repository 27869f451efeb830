"""collect against a loopback image host (real HTTP, real status codes), a URL list and a local folder."""

from __future__ import annotations

import hashlib
import io
import json
import socket

import pytest
from PIL import Image

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.dataset.sample import sketch_jpeg
from imagenet_sketch_tools.pipeline.collect import Fetcher, RateLimiter, Sources, collect, query_of
from imagenet_sketch_tools.pipeline.manifest import Manifest
from support.interrupts import assert_interrupted, interrupt, start_cli

TENCH, GOLDFISH = "n01440764", "n01443537"


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(sketch_jpeg(seed, "L", (90, 70)))).save(buffer, "PNG")
    return buffer.getvalue()


def url_list(tmp_path, lines: list[tuple[str, str]]):
    path = tmp_path / "urls.tsv"
    path.write_text("# wnid<TAB>url\n\n" + "".join(f"{wnid}\t{url}\n" for wnid, url in lines))
    return path


def fast_fetcher(**options) -> Fetcher:
    # the timeout only bounds a hang: a loopback answer on a loaded machine must not count as a timeout
    return Fetcher(**{"rate": 0, "timeout": 60.0, "retries": 2, "backoff": 0.01, **options})


def gets(server, path: str) -> int:
    return sum(1 for method, asked, _ in server.requests if method == "GET" and asked == path)


def test_url_list_keeps_real_images_with_complete_manifest_rows(tmp_path, http_server):
    served = {"/a.jpg": sketch_jpeg(1, "L", (160, 120)), "/b.jpg": sketch_jpeg(2, "RGB", (100, 80)), "/c": png(3)}
    urls = [(TENCH, http_server.serve(path, content, content_type="image/jpeg")) for path, content in served.items()]
    out = tmp_path / "out"
    summary = collect(out, [TENCH], Sources(["urls"], urls_file=url_list(tmp_path, urls)), fetcher=fast_fetcher())
    assert (summary.kept, dict(summary.failed)) == (3, {})
    rows = list(Manifest(out).rows("image"))
    assert [row["path"] for row in rows] == [f"raw/{TENCH}/000.jpg", f"raw/{TENCH}/001.jpg", f"raw/{TENCH}/002.png"]
    expected_shapes = [("L", 160, 120), ("RGB", 100, 80), ("L", 90, 70)]
    for row, (_, url), content, shape in zip(rows, urls, served.values(), expected_shapes):
        stored = (out / row["path"]).read_bytes()
        assert stored == content  # the served bytes, untouched
        assert row["sha256"] == hashlib.sha256(stored).hexdigest() and row["size"] == len(stored)
        assert (row["mode"], row["width"], row["height"]) == shape
        assert (row["wnid"], row["query"], row["url"], row["backend"]) == (TENCH, "sketch of tench", url, "urls")
        assert row["time"].endswith("Z")
    assert query_of("n02012849") == "sketch of crane" and query_of("n03710721") == "sketch of maillot"


def test_failures_are_counted_by_reason_and_retried_only_when_they_may_recover(tmp_path, http_server):
    html = b"<!DOCTYPE html><html><body>Hotlinking not allowed</body></html>"
    answers = {
        "/gone.jpg": None,  # never served: 404
        "/page.jpg": http_server.serve("/page.jpg", html, content_type="text/html"),
        "/disguised.jpg": http_server.serve("/disguised.jpg", html, content_type="image/jpeg"),
        "/corrupt.jpg": http_server.serve("/corrupt.jpg", sketch_jpeg(4)[:300], content_type="image/jpeg"),
        "/huge.jpg": http_server.serve("/huge.jpg", sketch_jpeg(5, size=(900, 700)), content_type="image/jpeg"),
        "/down.jpg": http_server.serve("/down.jpg", sketch_jpeg(7), failures=[(503, {})] * 5),
        "/busy.jpg": http_server.serve(
            "/busy.jpg", sketch_jpeg(8), content_type="image/jpeg", failures=[(429, {"Retry-After": "0"}), (500, {})]
        ),
    }
    urls = url_list(tmp_path, [(TENCH, http_server.url + path) for path in answers])
    fetcher = fast_fetcher(retries=2, max_bytes=20_000)
    summary = collect(tmp_path / "out", [TENCH], Sources(["urls"], urls_file=urls), fetcher=fetcher)
    expected = {"not_found": 1, "html": 2, "not_image": 1, "too_large": 1, "http_503": 1}
    assert (summary.kept, dict(summary.failed)) == (1, expected)
    assert [row["url"] for row in Manifest(tmp_path / "out").rows("image")] == [http_server.url + "/busy.jpg"]
    assert gets(http_server, "/gone.jpg") == 1 and gets(http_server, "/page.jpg") == 1  # a 404 is not retried
    assert gets(http_server, "/down.jpg") == 3  # 1 try + 2 retries
    assert gets(http_server, "/busy.jpg") == 3  # 429, then 500, then the image
    assert sorted(p.name for p in (tmp_path / "out" / "raw" / TENCH).iterdir()) == ["006.jpg"]
    state = json.loads((tmp_path / "out" / ".collect" / f"{TENCH}.json").read_text())
    assert state["done"] and state["kept"] == 1 and state["failed"] == expected
    assert "html 2" in summary.line() and "1 images kept, 6 failed" in summary.line()


def test_a_host_that_never_answers_is_a_timeout_and_retried(tmp_path):
    """The host accepts the connection and never answers, so only the fetcher's own timeout ends each try, on a
    quiet machine or a loaded one."""
    with socket.create_server(("127.0.0.1", 0)) as host:  # never accepts: the kernel completes the handshakes
        url = f"http://127.0.0.1:{host.getsockname()[1]}/silent.jpg"
        fetcher = fast_fetcher(timeout=0.3, retries=2)
        summary = collect(
            tmp_path / "out", [TENCH], Sources(["urls"], urls_file=url_list(tmp_path, [(TENCH, url)])), fetcher=fetcher
        )
        host.setblocking(False)
        tries = 0
        while True:  # each try left one connection in the queue, closed by the client but still there to accept
            try:
                host.accept()[0].close()
            except BlockingIOError:
                break
            tries += 1
    assert (summary.kept, dict(summary.failed), tries) == (0, {"timeout": 1}, 3)  # 1 try + 2 retries


def serve_class(server, wnid: str, count: int) -> list[tuple[str, str]]:
    return [(wnid, server.serve(f"/{wnid}/{n}.jpg", sketch_jpeg(n), content_type="image/jpeg")) for n in range(count)]


def test_second_run_downloads_nothing(tmp_path, http_server):
    urls = url_list(tmp_path, serve_class(http_server, TENCH, 3) + serve_class(http_server, GOLDFISH, 2))
    sources, out = Sources(["urls"], urls_file=urls), tmp_path / "out"
    first = collect(out, [TENCH, GOLDFISH], sources, fetcher=fast_fetcher())
    rows, asked = list(Manifest(out).rows()), len(http_server.requests)
    second = collect(out, [TENCH, GOLDFISH], sources, fetcher=fast_fetcher())
    assert (first.kept, second.kept, second.skipped) == (5, 0, 2)
    assert len(http_server.requests) == asked and list(Manifest(out).rows()) == rows


def test_interrupted_class_redoes_only_what_is_missing(tmp_path, http_server):
    urls = url_list(tmp_path, serve_class(http_server, TENCH, 5))
    sources, out = Sources(["urls"], urls_file=urls), tmp_path / "out"

    def interrupt_after_two(row):
        if row["path"].endswith("001.jpg"):
            raise KeyboardInterrupt  # as Ctrl-C would, between two downloads

    with pytest.raises(KeyboardInterrupt):
        collect(out, [TENCH], sources, fetcher=fast_fetcher(), workers=4, on_image=interrupt_after_two)
    assert len(list(Manifest(out).rows("image"))) == 2
    summary = collect(out, [TENCH], sources, fetcher=fast_fetcher())
    assert summary.kept == 3
    # The two kept are not fetched again; downloads running at the interruption (up to 3 of the 4 workers') may be.
    assert [gets(http_server, f"/{TENCH}/{n}.jpg") for n in range(2)] == [1, 1]
    assert sum(gets(http_server, f"/{TENCH}/{n}.jpg") for n in range(5)) <= 5 + 3
    paths = [row["path"] for row in Manifest(out).rows("image")]
    assert sorted(paths) == [f"raw/{TENCH}/{n:03d}.jpg" for n in range(5)]
    assert not list(out.rglob("*.partial"))


def test_folder_backend_copies_images_and_skips_other_files(tmp_path):
    folder = tmp_path / "mine" / TENCH
    folder.mkdir(parents=True)
    (folder / "1.jpg").write_bytes(sketch_jpeg(1))
    (folder / "2.png").write_bytes(png(2))
    (folder / "3.txt").write_text("not an image")
    (folder / "4.jpg").write_bytes(sketch_jpeg(4))
    out = tmp_path / "out"
    summary = collect(out, [TENCH, GOLDFISH], Sources(["folder"], folder=tmp_path / "mine"), limit=3)
    assert (summary.kept, dict(summary.failed)) == (2, {"not_image": 1})  # the limit stops before 4.jpg
    rows = list(Manifest(out).rows("image"))
    assert [row["url"] for row in rows] == [str(folder / "1.jpg"), str(folder / "2.png")]
    assert [(out / row["path"]).read_bytes() for row in rows] == [sketch_jpeg(1), png(2)]
    assert all(row["backend"] == "folder" for row in rows)


def test_backends_are_asked_in_order_until_the_limit(tmp_path, http_server):
    (tmp_path / "mine" / TENCH).mkdir(parents=True)
    (tmp_path / "mine" / TENCH / "local.jpg").write_bytes(sketch_jpeg(9))
    urls = url_list(tmp_path, serve_class(http_server, TENCH, 3))
    sources = Sources(["folder", "urls"], urls_file=urls, folder=tmp_path / "mine")
    collect(tmp_path / "out", [TENCH], sources, limit=3, fetcher=fast_fetcher())
    rows = list(Manifest(tmp_path / "out").rows("image"))
    assert [row["backend"] for row in rows] == ["folder", "urls", "urls"]


def test_rate_limit_spaces_requests_to_the_same_host():
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        now[0] += seconds

    limiter = RateLimiter(rate=4, clock=lambda: now[0], sleep=sleep)
    for host in ["a", "a", "b", "a"]:
        limiter.wait(host)
    assert slept == [0.25, 0.25]  # the 2nd and 4th request to host a; host b did not wait


def test_cli_collect_prints_a_summary_and_rejects_bad_input(tmp_path, http_server, capsys):
    urls = url_list(tmp_path, serve_class(http_server, TENCH, 2))
    out = str(tmp_path / "out")
    assert main(["collect", out, "--classes", TENCH, "--urls", str(urls), "--rate", "0"]) == 0
    assert capsys.readouterr().out.strip() == "collect: 1 classes (0 already done), 2 images kept, 0 failed"
    assert main(["collect", out, "--classes", "n99999999", "--urls", str(urls)]) == 1
    assert "unknown wnid 'n99999999'" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text(f"{TENCH}\thttp://x/1.jpg\n{TENCH} http://x/2.jpg\n")
    assert main(["collect", str(tmp_path / "o2"), "--classes", TENCH, "--urls", str(bad)]) == 1
    error = capsys.readouterr().err
    assert "bad.tsv line 2: expected 'wnid<TAB>http(s) URL'" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "o2" / "raw").exists()


@pytest.mark.slow
def test_ctrl_c_while_an_image_host_holds_a_download(tmp_path, http_server, capsys):
    """A real SIGINT while the host holds one image (and would hold it longer than --timeout allows): exit 130
    at once, every file in raw/ whole and in the manifest, no hidden temporary left; the rerun fetches the rest."""
    classes = (TENCH, GOLDFISH)
    served = {f"/{wnid}/{n}.jpg": (wnid, sketch_jpeg(10 * i + n)) for i, wnid in enumerate(classes) for n in range(5)}
    urls = [(wnid, http_server.serve(path, image, content_type="image/jpeg")) for path, (wnid, image) in served.items()]
    http_server.stall(f"/{TENCH}/3.jpg")
    out = tmp_path / "out"
    argv = ["collect", str(out), "--classes", f"{TENCH},{GOLDFISH}", "--urls", str(url_list(tmp_path, urls))]
    process = start_cli(*argv, "--rate", "0", "--timeout", "3600")
    assert http_server.stalled.wait(timeout=300), process.communicate()  # collect is waiting on that image
    assert_interrupted(*interrupt(process))
    rows = list(Manifest(out).rows("image"))
    assert {path.relative_to(out).as_posix() for path in (out / "raw").rglob("*") if path.is_file()} == {
        row["path"] for row in rows
    }
    assert all(hashlib.sha256((out / row["path"]).read_bytes()).hexdigest() == row["sha256"] for row in rows)
    assert f"{TENCH}/3.jpg" not in {row["url"].split("/", 3)[-1] for row in rows}
    assert not json.loads((out / ".collect" / f"{TENCH}.json").read_text()).get("done")

    http_server.release()
    assert main([*argv, "--rate", "0"]) == 0
    assert capsys.readouterr().out.startswith("collect: 2 classes (0 already done), ")
    rows = list(Manifest(out).rows("image"))
    assert sorted(row["url"] for row in rows) == sorted(url for _, url in urls)  # each image once
    assert all((out / row["path"]).read_bytes() == served[row["url"].removeprefix(http_server.url)][1] for row in rows)
