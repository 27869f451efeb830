from imagenet_sketch_tools.pipeline.manifest import Manifest


def test_rows_survive_reopening_and_latest_decision_wins(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append("image", path="raw/n01440764/a.jpg", wnid="n01440764")
    manifest.append("decision", path="raw/n01440764/a.jpg", decision="reject", reason="irrelevant")
    manifest.append("decision", path="raw/n01440764/a.jpg", decision="keep", reason="")
    manifest.append("decision", path="raw/n01440764/b.jpg", decision="reject", reason="similar class")
    reopened = Manifest(tmp_path)
    assert [row["event"] for row in reopened.rows()] == ["image", "decision", "decision", "decision"]
    assert reopened.rejected() == {"raw/n01440764/b.jpg"}
    assert all(row["time"].endswith("Z") for row in reopened.rows())


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append("image", path="a")
    with open(manifest.path, "a") as file:
        file.write('{"event": "image", "pa')
    assert [row["path"] for row in manifest.rows()] == ["a"]
