"""The report and the gallery, opened in a real browser: headless Chromium.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it with apt-get),
driven by Playwright. Where either is absent the tests skip and say why. The
gallery test reads the built documentation (``docs/_build/html``, or the folder
``IDC_SKLEARN_DOCS_HTML`` names); ``.ci/run`` runs it again after building the docs.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image

from idc_sklearn.cli import main

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
DOCS_HTML = Path(
    os.environ.get("IDC_SKLEARN_DOCS_HTML", REPO_ROOT / "docs/_build/html")
)
EXAMPLES = sorted(p.stem for p in (REPO_ROOT / "examples").glob("*.py"))


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the dev extra)"
    )
    executable = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if executable is None:
        pytest.skip(
            "no Chromium on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
            "on Debian: apt-get install chromium"
        )
    with sync_api.sync_playwright() as playwright:
        # No sandbox: CI runs as root, where Chromium refuses its sandbox.
        chromium = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def _open(browser, path: Path, root: Path | None = None):
    """The page at ``path``, every request it made, and any that left ``root``.

    ``root`` is the folder the page may load from (its own folder by default).
    """
    allowed = (root or path.parent).resolve().as_uri()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, outside = [], []
    page.on("request", lambda request: requests.append(request.url))

    def route(route):
        # Anything outside the allowed folder is refused, and remembered.
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, requests, outside


def _images(page, selector: str = "img") -> list[dict]:
    """Each image ``selector`` finds: its source, whether it loaded, its width."""
    return page.evaluate(
        "selector => Array.from(document.querySelectorAll(selector)).map(i => "
        "({src: i.currentSrc || i.src, complete: i.complete, width: i.naturalWidth}))",
        selector,
    )


def _screenshot(page) -> np.ndarray:
    png = page.screenshot(full_page=True)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_report_renders_in_chromium_with_every_image_and_no_request_out(
    browser, tmp_path
):
    out = tmp_path / "results"
    argv = [
        "compare", "--n-patients", "4", "--patches-per-patient", "10",
        "--patch-size", "32", "--max-epochs", "1", "--folds", "2",
        "--models", "mlbn-inception", "color-logreg", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    report = out / "report.html"
    page, requests, outside = _open(browser, report)
    shot = _screenshot(page)
    (tmp_path / "report.png").write_bytes(page.screenshot())
    images = _images(page)
    page.close()

    # A real page: wide, long, and not blank.
    height, width = shot.shape[:2]
    assert width == 1280 and height > 2500
    not_white = (shot < 240).any(axis=2).mean()
    assert not_white > 0.05, f"only {not_white:.1%} of the page is drawn"
    # Every image decoded, at a real size; none is broken.
    assert len(images) >= 7
    broken = [i["src"][:40] for i in images if not (i["complete"] and i["width"] > 50)]
    assert broken == []
    # The file itself was the only request.
    assert outside == []
    assert requests == [report.resolve().as_uri()]


def test_gallery_shows_each_examples_figures_not_placeholders(browser):
    index = DOCS_HTML / "auto_examples" / "index.html"
    if not index.is_file():
        pytest.skip(
            f"the docs are not built: {index} is absent (python -m sphinx -b html "
            "docs docs/_build/html builds them; .ci/run does)"
        )
    page, _, outside = _open(browser, index, DOCS_HTML)
    thumbnails = _images(page, ".sphx-glr-thumbcontainer img")
    page.close()
    assert outside == []
    assert len(thumbnails) == len(EXAMPLES)
    for thumbnail in thumbnails:
        assert thumbnail["complete"] and thumbnail["width"] > 50, thumbnail["src"]
        # sphinx-gallery's placeholder for an example that made no figure
        assert "no_image" not in thumbnail["src"], thumbnail["src"]
    for example in EXAMPLES:
        example_page = DOCS_HTML / "auto_examples" / f"{example}.html"
        page, _, outside = _open(browser, example_page, DOCS_HTML)
        figures = _images(page, "img.sphx-glr-single-img, img.sphx-glr-multi-img")
        page.close()
        assert outside == [], example
        assert figures, f"{example}: the page shows no figure"
        assert all(f["complete"] and f["width"] > 100 for f in figures), example


def test_results_page_shows_its_figures(browser):
    page_path = DOCS_HTML / "results.html"
    if not page_path.is_file():
        pytest.skip(f"the docs are not built: {page_path} is absent")
    page, _, outside = _open(browser, page_path, DOCS_HTML)
    figures = [i for i in _images(page) if "/_images/" in i["src"]]
    page.close()
    assert outside == []
    # the final table's forest plot and per-patient scores, and the forest plot
    # of the selection by cross-validation
    names = sorted(i["src"].rsplit("/", 1)[-1] for i in figures)
    assert names == [
        "cv_select_differences.png",
        "split_cv_differences.png",
        "split_cv_patients.png",
    ]
    assert all(i["complete"] and i["width"] > 300 for i in figures)
