"""The report page driven in a real headless Chromium with every network request blocked, on an eval folder whose
figures are known (see conftest.py): it loads clean, sorts, filters, draws every published result, shows every
thumbnail, and shows the per-class, confusion and comparison figures the known answers give."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from report_data import OTHER

from eval_data import CODED, KNOWN
from imagenet_sketch_tools.dataset import published
from imagenet_sketch_tools.dataset.classes import class_table, label_of_wnid
from imagenet_sketch_tools.report.page import write_report

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
GIVEN = {KNOWN: 70.0, OTHER: 80.0}  # ImageNet top-1s for the two models, so both are placed on the chart
NAMES = dict(zip(*class_table()))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def report(known_folder, tmp_path_factory) -> Path:
    out, archive = known_folder
    written = write_report(out, str(archive), tmp_path_factory.mktemp("page") / "report.html", GIVEN)
    assert written.models == 2
    return written.path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A page opened with every request but the file itself aborted, and everything that went wrong recorded."""

    def __init__(self, browser, path: Path):
        self.url = path.as_uri()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        self.page.route("**/*", self.only_the_file)
        self.page.goto(self.url)
        self.page.wait_for_selector("#line-chart[data-ready=true]", state="attached")  # the chart has rendered

    def only_the_file(self, route) -> None:
        self.requests.append(route.request.url)
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()


@pytest.fixture
def visit(browser, report):
    opened = Visit(browser, report)
    yield opened
    opened.page.close()


def test_page_loads_offline_with_no_failed_request_and_no_console_error(visit):
    assert visit.problems == []
    assert visit.requests == [visit.url]  # nothing but the file itself was asked for, so nothing leaves it


def test_the_scatter_holds_every_published_result_and_the_users_models(visit):
    published_marks = visit.page.locator("#line-chart svg g.published_marks path")
    yours = visit.page.locator("#line-chart svg g.yours_marks path")
    assert published_marks.count() == len(published.sketch_results()) == 1556  # one per (model, img_size)
    assert yours.count() == 2
    assert "probit(sketch) = 1.413 × probit(ImageNet) − 1.684" in visit.page.locator(".equation").inner_text()


def test_every_thumbnail_decodes(visit):
    images = visit.page.locator("img")
    assert images.count() > 0
    widths = visit.page.evaluate(
        "Array.from(document.images).map((image) => [image.dataset.thumb, image.naturalWidth])"
    )
    assert [path for path, width in widths if width == 0] == []
    assert visit.page.locator(".missing").count() == 0  # every image asked for was found in the archive


def leaderboard_models(page) -> list[str]:
    return page.locator("#leaderboard-table tbody tr").evaluate_all("rows => rows.map(row => row.dataset.model)")


def test_the_leaderboard_sorts_on_a_click(visit):
    page = visit.page
    assert leaderboard_models(page) == [OTHER, KNOWN]  # results.csv's order: best top-1 first
    top1 = page.locator("#leaderboard-table th:text-is('Top-1 %')")
    top1.click()
    assert leaderboard_models(page) == [OTHER, KNOWN] and top1.get_attribute("aria-sort") == "descending"
    top1.click()
    assert leaderboard_models(page) == [KNOWN, OTHER] and top1.get_attribute("aria-sort") == "ascending"
    page.locator("#leaderboard-table th:text-is('Model')").click()  # names, descending: 'python:...' first
    assert leaderboard_models(page) == [KNOWN, OTHER]


def test_searching_a_wnid_filters_the_class_table(visit):
    page = visit.page
    rows = page.locator("#class-table tbody tr:visible")
    assert rows.count() == len(CODED)
    page.fill("#class-search", "n03126707")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.wnid)") == ["n03126707"]
    assert page.locator("#class-count").inner_text() == f"1 of {len(CODED)} classes"
    page.fill("#class-search", "TENCH")  # a word of the name, any case
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.wnid)") == ["n01440764"]
    page.fill("#class-search", "")
    assert rows.count() == len(CODED)


def test_known_answers_give_the_per_class_figures_shown(visit):
    for wnid, ranks in CODED.items():
        cells = visit.page.locator(f'#class-table tr[data-wnid="{wnid}"] td').all_inner_texts()
        top1 = 100 * sum(rank == 0 for rank in ranks) / len(ranks)
        top5 = 100 * sum(rank < 5 for rank in ranks) / len(ranks)
        # columns: wnid, name, images, then per model (leaderboard order: the complement first) top-1, top-5
        assert cells == [wnid, NAMES[wnid], str(len(ranks)), f"{100 - top1:.1f}", "100.0", f"{top1:.1f}", f"{top5:.1f}"]
    leaderboard = visit.page.locator(f'#leaderboard-table tr[data-model="{KNOWN}"] td').all_inner_texts()
    assert leaderboard[1:3] == ["31.250", "75.000"]


def first_name(name: str) -> str:
    return name.split(",")[0]  # "tench", not "tench, Tinca tinca"


def test_known_answers_give_the_confusions_shown(visit):
    # a miss of rank r >= 1 puts label+1 first: every mistake of the known model is "class -> the next class"
    expected = Counter()
    for wnid, ranks in CODED.items():
        expected[wnid] += sum(rank != 0 for rank in ranks)
    cards = visit.page.locator('.failure-view[data-key="1"] .confusion')  # the known model is second
    shown = {}
    for index in range(cards.count()):
        card = cards.nth(index)
        true = card.get_attribute("data-true")
        shown[true] = int(card.locator(".count").inner_text())
        said = class_table()[1][(label_of_wnid()[true] + 1) % 1000]
        assert card.locator(".head").inner_text() == f"{first_name(NAMES[true])} → {first_name(said)}"
    assert shown == {wnid: count for wnid, count in expected.items() if count}
    first = cards.nth(0)
    assert first.get_attribute("data-true") == "n15075141" and first.locator(".count").inner_text() == "5"
    assert visit.page.locator('.failure-view[data-key="1"] .confident figure').count() == sum(expected.values())


def test_model_against_model_shows_who_gets_which_images_right(visit):
    view = visit.page.locator('.pair-view[data-key="0"]')
    right = sum(rank == 0 for ranks in CODED.values() for rank in ranks)
    total = sum(len(ranks) for ranks in CODED.values())
    assert (
        f"{total - right} right only for {OTHER}, {right} right only for {KNOWN}"
        in view.locator("p").first.inner_text()
    )
    # the complement beats the known model where the known one is right on less than half the class
    better = [wnid for wnid, ranks in CODED.items() if sum(rank == 0 for rank in ranks) < len(ranks) / 2]
    shown = view.locator(".a-better .card").evaluate_all("cards => cards.map(card => card.dataset.wnid)")
    assert sorted(shown) == sorted(better)
    assert view.locator(".b-better .card").count() == 0


def test_each_compared_image_shows_both_predictions(visit):
    # goldfish's one image: rank 2 for the known model (B), so B said the next class; the complement (A) is right
    card = visit.page.locator('.pair-view[data-key="0"] .a-better .card[data-wnid="n01443537"]')
    assert card.locator("figcaption").all_inner_texts() == ["A ✓ goldfish\nB ✗ great white shark\nsketch_0.JPEG"]
    assert card.locator("figure.right img").count() == 1
