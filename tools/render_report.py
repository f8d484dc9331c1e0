"""Render a ``report.html`` with headless Chromium: full-page PNG, PDF and a layout check.

A real browser shows what a reader sees: whether the figures are displayed at (at least)
the size they were drawn for, so that their text keeps the point size it was set in, and
whether anything sticks out of the page horizontally. Usage::

    python tools/render_report.py RESULTS/report.html --png page.png --pdf page.pdf
    python tools/render_report.py RESULTS/report.html --check
    python tools/render_report.py RESULTS/report.html \\
        --section encoding_by_population --section-png docs/images/report-section.png

``--check`` exits with status 1 when a figure is scaled below its design width (its
natural pixel width is larger than the width it is shown at: the browser shrinks it, and
its text with it) or when the page is wider than the window; status 2 when no Chromium
binary is found. The check needs no DevTools protocol: a copy of the page gets a small
script that, on load, measures every image and the page and writes the numbers into
``document.title``; ``chromium --headless --dump-dom`` prints the DOM, title included.

The browser is the first of ``$SHAREDREP_CHROMIUM``, ``chromium``, ``chromium-browser``,
``chromium-headless-shell``, ``google-chrome``, ``google-chrome-stable`` found on the
``PATH`` (Debian: ``apt-get install chromium``). Cropping a section needs Pillow (a
dependency of matplotlib). Not part of the package.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = (
    "chromium",
    "chromium-browser",
    "chromium-headless-shell",
    "google-chrome",
    "google-chrome-stable",
)
#: Window width (CSS pixels) the report is rendered at.
WIDTH = 1200
#: Tolerance (pixels) of the comparison of natural and displayed widths (rounding).
TOLERANCE_PX = 1.0
#: Tallest screenshot (pixels): longer pages are cut (Chromium's texture limit).
MAX_HEIGHT = 16384

_MEASURE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (im) {
    var r = im.getBoundingClientRect();
    return {alt: im.alt, natural: im.naturalWidth, shown: r.width};
  });
  var sections = Array.prototype.map.call(document.querySelectorAll('h2[id]'), function (h) {
    var box = (h.closest('section') || h).getBoundingClientRect();
    return {id: h.id, top: box.top + window.scrollY, bottom: box.bottom + window.scrollY};
  });
  var body = document.body.getBoundingClientRect();
  document.title = 'LAYOUT:' + JSON.stringify({
    window: window.innerWidth,
    scroll_width: document.documentElement.scrollWidth,
    scroll_height: document.documentElement.scrollHeight,
    body: [body.left, body.right],
    images: images,
    sections: sections
  });
});
</script>"""


def find_browser() -> str | None:
    """Path of a headless-capable Chromium, or None."""
    env = os.environ.get("SHAREDREP_CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(browser: str, args: list[str], timeout: float = 120) -> str:
    """Run the browser headless with ``args``; return its standard output."""
    with tempfile.TemporaryDirectory(prefix="render-report-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # needed when running as root (containers, CI)
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
            "--mute-audio",
            f"--user-data-dir={profile}",
            *args,
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{Path(browser).name} took more than {timeout:g} s") from None
    if done.returncode != 0:
        name = Path(browser).name
        raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def measure(report: str | os.PathLike, width: int = WIDTH, browser: str | None = None) -> dict:
    """Lay the report out in the browser and return what the page measured.

    Returns
    -------
    dict
        ``window`` (width), ``scroll_width``, ``scroll_height``, ``body`` ([left, right]),
        ``images`` (``alt``, ``natural`` and ``shown`` widths in pixels) and ``sections``
        (``id``, ``top``, ``bottom`` in page pixels, one per ``<h2 id>``).
    """
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium binary found (apt-get install chromium)")
    text = Path(report).read_text(encoding="utf-8")
    probe = text.replace("</body>", _MEASURE + "</body>", 1)
    if probe == text:
        probe = text + _MEASURE
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        page = Path(tmp) / "measure.html"
        page.write_text(probe, encoding="utf-8")
        dom = _run(
            browser,
            [
                f"--window-size={width},900",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
        )
    found = re.search(r"<title>LAYOUT:(.*?)</title>", dom, flags=re.S)
    if not found:
        raise RuntimeError("the page did not report its layout (no LAYOUT title in the DOM)")
    return json.loads(html.unescape(found.group(1)))


def problems(layout: dict, tolerance: float = TOLERANCE_PX) -> list[str]:
    """What is wrong with a measured layout: figures shown narrower than they were drawn
    (their text shrinks), images that did not load, a page wider than the window."""
    out = []
    for im in layout["images"]:
        if not im["natural"]:
            out.append(f"image {im['alt']!r} did not load")
        elif im["shown"] + tolerance < im["natural"]:
            out.append(
                f"figure {im['alt']!r} is shown {im['shown']:.0f} px wide, below its design "
                f"width of {im['natural']} px (x{im['shown'] / im['natural']:.2f})"
            )
    if layout["scroll_width"] > layout["window"]:
        out.append(
            f"the page is {layout['scroll_width']} px wide in a {layout['window']} px window"
        )
    return out


def screenshot(
    report: str | os.PathLike,
    png: str | os.PathLike,
    *,
    width: int = WIDTH,
    height: int | None = None,
    browser: str | None = None,
) -> dict:
    """Full-page PNG of the report (height measured first, at most :data:`MAX_HEIGHT`);
    returns the layout."""
    browser = browser or find_browser()
    layout = measure(report, width, browser)
    height = min(height or int(layout["scroll_height"]), MAX_HEIGHT)
    _run(
        browser,
        [
            f"--window-size={width},{height}",
            f"--screenshot={Path(png).resolve()}",
            Path(report).resolve().as_uri(),
        ],
    )
    return layout


def print_pdf(report: str | os.PathLike, pdf: str | os.PathLike, browser: str | None = None):
    """The report printed to PDF (the page's print style sheet applies)."""
    browser = browser or find_browser()
    _run(
        browser,
        [
            "--no-pdf-header-footer",
            f"--print-to-pdf={Path(pdf).resolve()}",
            Path(report).resolve().as_uri(),
        ],
    )


def crop_section(
    full_png: str | os.PathLike, layout: dict, section: str, out: str | os.PathLike
) -> Path:
    """Cut one section (an ``<h2 id>``, e.g. ``a-encoding_by_population``, or an analysis
    name) out of a full-page screenshot, to the width of the page's body."""
    from PIL import Image

    ids = {s["id"]: s for s in layout["sections"]}
    box = ids.get(section) or ids.get(f"a-{section}")
    if box is None:
        raise KeyError(f"no section {section!r} in the page (have {sorted(ids)})")
    left, right = layout["body"]
    with Image.open(full_png) as im:
        part = im.crop(
            (
                max(0, int(left)),
                max(0, int(box["top"]) - 8),
                min(im.width, int(right)),
                min(im.height, int(box["bottom"]) + 8),
            )
        )
        part = part.convert("RGB").quantize(colors=256)  # a small file for docs/
        part.save(out, optimize=True)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="the report.html to render")
    ap.add_argument("--png", type=Path, help="full-page screenshot to write")
    ap.add_argument("--pdf", type=Path, help="PDF (print layout) to write")
    ap.add_argument("--width", type=int, default=WIDTH, help="window width in CSS pixels")
    ap.add_argument("--check", action="store_true", help="exit 1 on a shrunk figure / overflow")
    ap.add_argument("--section", help="section to crop (analysis name or h2 id)")
    ap.add_argument("--section-png", type=Path, help="where to write the cropped section")
    args = ap.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium binary found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        full = args.png or Path(tmp) / "page.png"
        if args.png or args.section_png:
            layout = screenshot(args.report, full, width=args.width, browser=browser)
            print(f"wrote {full} ({layout['scroll_height']} px tall)")
        else:
            layout = measure(args.report, args.width, browser)
        if args.section_png:
            crop_section(full, layout, args.section or "", args.section_png)
            print(f"wrote {args.section_png}")
    if args.pdf:
        print_pdf(args.report, args.pdf, browser)
        print(f"wrote {args.pdf}")
    found = problems(layout)
    for p in found:
        print(f"layout: {p}")
    if not found:
        n = len(layout["images"])
        print(f"layout: {n} figures shown at least at their design width; no overflow")
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
