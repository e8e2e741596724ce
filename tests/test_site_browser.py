"""The published site in a real headless Chromium (Debian's chromium + chromium-driver, via selenium).

Guards against: a table that is not in ranked order, headers that do not sort, filters that do
not hide rows, plots that do not load from file://, and a plugin's text run as HTML (the old
page put names into HTML by string formatting). Skipped, with the reason printed, only where
selenium or Chromium cannot be found (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from site_fixture import XSS, records, write_run

from bench.report.site import publish


def _driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[test]')"
    else:
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        driver = shutil.which("chromedriver")
        if browser and driver:
            opts = webdriver.ChromeOptions()
            opts.binary_location = browser
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1400,1000", "--allow-file-access-from-files"):
                opts.add_argument(arg)
            return webdriver.Chrome(service=Service(driver), options=opts)
        reason = "chromium or chromedriver not found (apt-get install chromium chromium-driver)"
    print(f"SKIP browser test: {reason}", file=sys.stderr)
    pytest.skip(reason)


STRATEGIES = ("scratch", "linear-probe", "finetune", "knn")


def _records() -> list[dict]:
    """The fixture run with one flagged record (knn, seed 1: collapsed)."""
    recs = records()
    for r in recs:
        if r["task"] == "mnist5k" and r["strategy"] == "knn" and r["seed"] == 1:
            r["flags"] = ["collapsed"]
    return recs


def _screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: ``BENCH_SCREENSHOTS`` when set (kept), else a tmp folder named for this test."""
    dest = os.environ.get("BENCH_SCREENSHOTS")
    folder = Path(dest) if dest else tmp_path_factory.mktemp("test_site_browser-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from selenium.webdriver.common.by import By

    from bench.report import names

    tmp = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as mp:  # the fixture's strategies, registered with its options as defaults
        mp.setattr(names, "registered_defaults", lambda: {s: {"lr": 0.001} for s in STRATEGIES})
        site = publish([write_run(tmp / "run", _records())], tmp / "site")
    drv = _driver()
    drv.get((site / "index.html").as_uri())
    yield drv, By, site
    drv.quit()


def _rows(drv, by):
    out = []
    for tr in drv.find_elements(by.CSS_SELECTOR, "#scores tbody tr"):
        if tr.is_displayed():
            out.append([td.text for td in tr.find_elements(by.TAG_NAME, "td")])
    return out


def test_ranked_order_sort_filter_and_screenshot(page):
    drv, by, site = page
    rows = _rows(drv, by)
    first = [r for r in rows if r[0] == "mnist5k" and r[3] == "1/class"]
    assert [r[1] + " / " + r[2] for r in first] == ["enc / finetune", "enc / knn", "enc / linear-probe",
                                                   "enc / scratch", XSS + " / linear-probe"]
    assert [r[5] for r in first] == ["1", "2", "3", "4", "5"]
    assert [r[10] for r in first[:3]] == ["≈ best", "≈ best", ""]  # knn is within noise of finetune
    # the classic chart is on the first screen and loads from file://
    img = drv.find_element(by.ID, "curves")
    assert drv.execute_script("return arguments[0].naturalWidth", img) > 0
    assert drv.execute_script("return arguments[0].getBoundingClientRect().top", img) < 1000
    drv.save_screenshot(str(site / "screenshot-index.png"))
    # clicking "score %" sorts by score, descending first, then ascending
    head = drv.find_element(by.XPATH, "//table[@id='scores']/thead/tr/th[8]")
    head.click()
    scores = [float(r[7]) for r in _rows(drv, by)]
    assert scores == sorted(scores, reverse=True) and scores[0] == 90.0
    head.click()
    scores = [float(r[7]) for r in _rows(drv, by)]
    assert scores == sorted(scores) and scores[0] == 10.0
    # a filter hides rows
    total = len(_rows(drv, by))
    drv.execute_script("var s = document.getElementById('filter-task'); s.value = 'shift-task';"
                       "s.dispatchEvent(new Event('change'));")
    shown = _rows(drv, by)
    assert 0 < len(shown) < total and {r[0] for r in shown} == {"shift-task"}
    drv.save_screenshot(str(site / "screenshot-filtered.png"))
    dest = os.environ.get("BENCH_SCREENSHOTS")
    if dest:
        for name in ("screenshot-index.png", "screenshot-filtered.png"):
            shutil.copy(site / name, Path(dest) / name)
    print(f"screenshots: {site / 'screenshot-index.png'}, {site / 'screenshot-filtered.png'}")


def test_plugin_text_is_shown_as_text_and_no_script_runs(page):
    from selenium.common.exceptions import NoAlertPresentException

    drv, by, site = page
    for name in ["index.html", *sorted(p.name for p in site.glob("task-*.html"))]:
        drv.get((site / name).as_uri())
        if "shift-task" not in name:  # the plugin encoder ran on mnist5k only
            drv.execute_script("document.querySelectorAll('details').forEach(function (d) { d.open = true; });")
            text = drv.find_element(by.TAG_NAME, "body").text
            assert XSS in text, name
            if "mnist5k" in name:  # its description, in the row's provenance
                assert f"encoder description\n{XSS}" in text or f"encoder description {XSS}" in text
        # no element the plugin's text could have created
        assert drv.find_elements(by.CSS_SELECTOR, "img[src='x']") == [], name
        with pytest.raises(NoAlertPresentException):  # an onerror=alert(1) that ran would leave one open
            _ = drv.switch_to.alert.text
        assert len(drv.find_elements(by.TAG_NAME, "script")) == 1, name


def _inside(point: list[float], box: list[float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_figures_flags_rank_intervals_and_default_marks_on_every_page(page, tmp_path_factory):
    """Each figure loads, is at least 600 px wide on the page, and its key covers no plotted point;
    the flagged row, the legend, rank intervals and the top group, and the default marks are shown."""
    import json

    drv, by, site = page
    shots = _screenshots(tmp_path_factory)
    pages = ["index.html", *sorted(p.name for p in site.glob("task-*.html"))]
    seen = 0
    for name in pages:
        drv.get((site / name).as_uri())
        figures = drv.find_elements(by.CSS_SELECTOR, "img.figure")
        assert figures, f"{name}: no figure"
        for img in figures:
            assert drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0, name
            assert drv.execute_script("return arguments[0].getBoundingClientRect().width", img) >= 600, name
            meta = json.loads(img.get_attribute("data-meta"))
            assert meta["width"] >= 600 and meta["points"] and meta["legend"]
            covered = [p for p in meta["points"] if _inside(p, meta["legend"])]
            assert covered == [], f"{name}: the key covers {len(covered)} plotted point(s)"
            seen += 1
        body = drv.find_element(by.TAG_NAME, "body").text
        assert "rank interval" in body and "top" in body, name
        if "shift-task" not in name:
            assert "[collapsed]" in body and "collapsed" in drv.find_element(by.ID, "legend").text, name
            marks = drv.find_elements(by.CSS_SELECTOR, "summary.default-mark")
            assert marks and all(m.text == "default" for m in marks if m.is_displayed()), name
        drv.save_screenshot(str(shots / f"screenshot-{name[:-5]}.png"))
    assert seen == 2 + 1 + 2  # the index: each task's curves; mnist5k: its curves; shift-task: curves and gap
    drv.get((site / "index.html").as_uri())
    assert drv.find_element(by.ID, "top-group").text.startswith("enc / finetune")
    intervals = [td.text for td in drv.find_elements(by.CSS_SELECTOR, "#overall td.rank-interval")]
    assert intervals[-1] == "5"  # the plugin encoder is last in every resample
    print(f"screenshots: {shots}")


#: the published site; ``BENCH_PUBLISHED_SITE`` points the test at another folder (a trial publish)
PUBLISHED = Path(os.environ.get("BENCH_PUBLISHED_SITE") or Path(__file__).resolve().parents[1] / "leaderboard")


def test_the_published_leaderboard_opens_with_its_figures_flags_rank_intervals_and_default_marks():
    """leaderboard/ itself, as published: every page opens from file://, each figure loads at 600 px
    or more with its key covering no plotted point, the index shows rank intervals and a top group,
    every flag a published record carries is named in the flags legend, and default marks show.
    Screenshots go to ``BENCH_SCREENSHOTS`` when set."""
    import json

    if not (PUBLISHED / "index.html").exists():
        pytest.skip(f"no published site at {PUBLISHED}")
    from selenium.webdriver.common.by import By as by

    flags = set()
    for line in (PUBLISHED / "results.jsonl").read_text().splitlines():
        flags.update(f for f in json.loads(line).get("flags") or [] if not f.startswith("overlap"))
    dest = os.environ.get("BENCH_SCREENSHOTS")
    drv = _driver()
    try:
        pages = ["index.html", *sorted(p.name for p in PUBLISHED.glob("task-*.html"))]
        figures_seen = marks_seen = 0
        for name in pages:
            drv.get((PUBLISHED / name).as_uri())
            for img in drv.find_elements(by.CSS_SELECTOR, "img.figure"):
                assert drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0, name
                assert drv.execute_script("return arguments[0].getBoundingClientRect().width", img) >= 600, name
                meta = json.loads(img.get_attribute("data-meta"))
                covered = [p for p in meta["points"] if _inside(p, meta["legend"])]
                assert covered == [], f"{name}: the key covers {len(covered)} plotted point(s)"
                figures_seen += 1
            marks_seen += len(drv.find_elements(by.CSS_SELECTOR, "summary.default-mark"))
            if name == "index.html":
                body = drv.find_element(by.TAG_NAME, "body").text
                assert "rank interval" in body and drv.find_element(by.ID, "top-group").text.strip()
                if flags:
                    legend = drv.find_element(by.ID, "legend").text
                    missing = sorted(f for f in flags if f not in legend)
                    assert missing == [], f"flags carried by published records but not in the legend: {missing}"
            if dest:
                Path(dest).mkdir(parents=True, exist_ok=True)
                drv.save_screenshot(str(Path(dest) / f"published-{name[:-5]}.png"))
        assert figures_seen >= len(pages) and marks_seen > 0
    finally:
        drv.quit()
