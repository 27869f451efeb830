"""The search backends' wiring. The real engines cannot be reached from here: the test sends icrawler's requests
to a loopback proxy that refuses them, which is what an offline machine sees, and checks the query it asked for."""

from __future__ import annotations

import pytest

from imagenet_sketch_tools.cli.main import main

pytest.importorskip("icrawler", reason="the search engine backends need the pipeline extra (icrawler)")


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine, query_part, colour_filter",
    [("bing", "q=sketch of tench", "qft=+filterui:color2-bw"), ("google", "q=sketch+of+tench", "ic%3Agray")],
)
def test_search_engine_asks_for_black_and_white_and_fails_in_one_line_offline(
    engine, query_part, colour_filter, tmp_path, http_server, monkeypatch, capsys
):
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, http_server.url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    assert main(["collect", str(tmp_path / "out"), "--classes", "n01440764", "--backend", engine]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith(f"imagenet-sketch: error: {engine} image search failed for https://")
    assert query_part in error and colour_filter in error
    assert "check the connection, or use --urls" in error
    assert not (tmp_path / "out" / "raw").exists()
