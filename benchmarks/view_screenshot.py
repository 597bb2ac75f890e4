"""docs/view.png: ``acumen view``'s page over a small example dataset, taken in headless
Chromium with Playwright (Debian's chromium; no network needed).

    python benchmarks/view_screenshot.py [--out docs/view.png] [--chromium /usr/bin/chromium]

The dataset: 60 images of 32 x 32 pixels (a disc of a colour per label on a gradient), with
a label, a split and a brightness; the page is filtered to ``split == 'train'``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

import numpy as np

import acumen
from acumen.commands.view_data import Viewer
from acumen.commands.view_server import make_server

COLOURS = [(230, 80, 60), (60, 160, 90), (70, 110, 220), (240, 190, 40), (150, 80, 200)]
ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]


def example(path: Path, n: int = 60) -> None:
    """Images with metadata, as a small dataset at ``path``."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32]
    with acumen.Writer(path, codec="zstd") as writer:
        for i in range(n):
            label = int(rng.integers(len(COLOURS)))
            image = np.empty((32, 32, 3), np.uint8)
            image[:] = (x * 3 + y * 2 + 40)[..., None]
            cy, cx, r = rng.integers(10, 22), rng.integers(10, 22), rng.integers(5, 10)
            image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = COLOURS[label]
            split = "train" if i % 5 else "test"
            writer.add(image, label=label, split=split, brightness=float(image.mean() / 255))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "docs" / "view.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shapes"
        example(path)
        with acumen.open(path) as ds:
            server = make_server(Viewer(ds, "shapes"), 0)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
                    page = browser.new_page(viewport={"width": 1200, "height": 1000})
                    page.goto(url)
                    page.fill("#filter", "split == 'train'")
                    page.press("#filter", "Enter")
                    page.select_option("#page-size", "10")
                    expect(page.locator("#rows tbody tr")).to_have_count(10)
                    expect(page.locator("#gallery img.thumb")).to_have_count(10)
                    page.locator("#gallery .card").nth(2).click()
                    page.wait_for_selector("#detail .stats")
                    page.wait_for_selector(".hist[data-column=split] rect")
                    page.wait_for_timeout(300)  # the last thumbnails decode
                    page.screenshot(path=args.out, full_page=True)
                    browser.close()
            finally:
                server.shutdown()
                server.server_close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
