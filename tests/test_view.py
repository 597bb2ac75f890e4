"""``acumen view``: its JSON API read directly, its page driven in headless Chromium
(Playwright, Debian's chromium), and the command stopped by SIGTERM. The server runs on
127.0.0.1 on a free port, started and stopped by the tests."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.commands.view_data import Viewer
from acumen.commands.view_images import encode_png
from acumen.commands.view_server import make_server
from acumen.read.query_check import QueryError, check_query

Image = pytest.importorskip("PIL.Image")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ACUMEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
HOSTILE = "<b>bold</b><img src=x onerror=alert(1)>"
N = 12


def colour(i: int) -> tuple[int, int, int]:
    return (20 * i, 255 - 20 * i, 7)


def image(i: int) -> np.ndarray:
    """Sample i: 6 x 8 pixels of colour(i), with a white top-left pixel."""
    array = np.empty((6, 8, 3), np.uint8)
    array[:] = colour(i)
    array[0, 0] = 255
    return array


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("view") / "images"
    with acumen.Writer(path, codec="zstd") as writer:
        for i in range(N):
            name = HOSTILE if i == 5 else f"s{i:02d}"
            writer.add(image(i), label=i % 3, name=name, score=i / 10, train=i % 4 > 0)
    return path


class Served:
    """A viewer's server in a thread: ``url``, ``get(path, **params)``, ``stop()``."""

    def __init__(self, ds: acumen.Dataset, path: str) -> None:
        self.server = make_server(Viewer(ds, path), 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def get(self, path: str, **params: object) -> tuple[int, str, bytes]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + query, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers["Content-Type"], error.read()

    def json(self, path: str, **params: object) -> tuple[int, dict]:
        status, kind, body = self.get(path, **params)
        assert kind.startswith("application/json")
        return status, json.loads(body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(images: Path):
    with acumen.open(images) as ds:
        server = Served(ds, str(images))
        yield server
        server.stop()


# --- the JSON API ------------------------------------------------------------------------------


def test_summary_rows_and_filters(served: Served) -> None:
    status, summary = served.json("/api/summary")
    assert status == 200
    assert summary["samples"] == N and summary["shape"] == [6, 8, 3]
    assert summary["dtype"] == "uint8" and summary["codec"] == "zstd"
    assert [c["name"] for c in summary["columns"]] == ["label", "name", "score", "train"]

    _, page = served.json("/api/rows", offset=2, limit=3)
    assert page["total"] == N and [r["position"] for r in page["rows"]] == [2, 3, 4]
    assert page["rows"][0]["shape"] == "6x8x3" and page["rows"][0]["metadata"]["name"] == "s02"

    _, page = served.json("/api/rows", filter="label == 1 and score > 0.2")
    assert page["total"] == 3 and [r["position"] for r in page["rows"]] == [4, 7, 10]
    _, page = served.json("/api/rows", filter=f"name == {HOSTILE!r}")
    assert [r["metadata"]["name"] for r in page["rows"]] == [HOSTILE]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "label >"}, "cannot read the filter"),
        ({"filter": "nothing > 1"}, "'nothing' is not a metadata column"),
        ({"filter": "label.__class__"}, "'.' is not allowed"),
        ({"filter": "@ds"}, "'@' is not allowed"),
        ({"filter": '__import__("os")'}, "not a metadata column"),
        ({"filter": "label + 1"}, "True/False"),
        ({"limit": 0}, "limit 0 is out of range"),
        ({"limit": 501}, "limit 501 is out of range"),
        ({"offset": -1}, "offset -1 is out of range"),
        ({"offset": "1e3"}, "offset is not a whole number"),
    ],
)
def test_bad_requests_are_400_with_a_message(served: Served, params: dict, message: str) -> None:
    status, body = served.json("/api/rows", **params)
    assert status == 400 and message in body["error"]


def test_samples_thumbnails_and_histograms(served: Served) -> None:
    _, sample = served.json("/api/sample", i=3)
    (part,) = sample["parts"]
    assert part["kind"] == "image" and part["shape"] == [6, 8, 3]
    assert part["stats"]["max"] == 255 and part["stats"]["min"] == 7
    status, kind, body = served.get("/api/thumbnail", i=3)
    assert status == 200 and kind == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), image(3))
    for bad in ({"i": N}, {"i": -1}, {"i": "x"}, {"i": 1, "size": 4}, {"i": 1, "field": "a"}):
        status, _, body = served.get("/api/thumbnail", **bad)
        assert status == 400, bad

    _, labels = served.json("/api/histogram", column="label")
    assert labels["counts"] == [4, 4, 4] and labels["values"] == [0, 1, 2]
    _, train = served.json("/api/histogram", column="train", filter="label == 0")
    assert dict(zip(train["labels"], train["counts"], strict=True)) == {"False": 1, "True": 3}
    status, _ = served.json("/api/histogram", column="<nope>")
    assert status == 400


def test_only_local_reads_are_answered(served: Served) -> None:
    host = served.url.removeprefix("http://")
    request = urllib.request.Request(served.url + "/api/summary", headers={"Host": "evil.test"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    refused.value.close()
    request = urllib.request.Request(served.url + "/api/summary", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405 and host.startswith("127.0.0.1:")
    refused.value.close()


def test_fields_arrays_and_encoded_images(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.fromarray(image(2)).save(png, format="PNG")
    grid = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    grid[0, 0] = np.nan
    with acumen.Writer(tmp_path / "fields") as writer:
        writer.add({"photo": png.getvalue(), "grid": grid, "curve": np.linspace(0, 1, 5000)}, k=1)
    with acumen.open(tmp_path / "fields") as ds:
        server = Served(ds, "fields")
        try:
            _, sample = server.json("/api/sample", i=0)
            parts = {p["field"]: p for p in sample["parts"]}
            assert parts["photo"]["kind"] == "image" and parts["photo"]["type"] == "image/png"
            assert parts["grid"]["kind"] == "grid" and len(parts["grid"]["values"]) == 50
            assert parts["grid"]["values"][0][0] is None
            assert parts["grid"]["stats"]["nonfinite"] == 1
            assert parts["grid"]["stats"]["max"] == 599
            assert parts["curve"]["kind"] == "series" and len(parts["curve"]["values"]) == 1000
            _, _, body = server.get("/api/thumbnail", i=0, field="photo")
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), image(2))
            status, _ = server.json("/api/thumbnail", i=0, field="grid")
            assert status == 400
        finally:
            server.stop()


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (5, 7, 4)])
def test_png_without_pillow(shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(array)))), array)


def test_the_query_check_lets_queries_through_and_nothing_else() -> None:
    columns, numeric = ["label", "name", "my col"], ["label", "my col"]
    for query in ("label in [1, 2] and not name == 'a'", "`my col` * 2 > 3", "~(label < 1)"):
        check_query(query, columns, numeric)
    for query in ("9 ** 9 ** 9 > label", "name * 10 == 'a'", "[label] * 9 == 1", "lambda: 1"):
        with pytest.raises(QueryError):
            check_query(query, columns, numeric)


def test_a_remote_dataset(images: Path, http_server, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(images, http_server.root / "images")
    with acumen.open(http_server.url("images"), cache=tmp_path / "cache") as ds:
        server = Served(ds, http_server.url("images"))
        try:
            _, page = server.json("/api/rows", filter="label == 2")
            assert [r["position"] for r in page["rows"]] == [2, 5, 8, 11]
            _, _, body = server.get("/api/thumbnail", i=8)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), image(8))
        finally:
            server.stop()


# --- the command -------------------------------------------------------------------------------


def test_sigterm_stops_the_command_with_status_0(images: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "acumen.cli", "view", str(images), "--no-browser"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        line = process.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/summary", timeout=10) as response:
            assert json.loads(response.read())["samples"] == N
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read().strip() == "acumen view: stopped"


# --- the page, in headless Chromium ------------------------------------------------------------


@pytest.fixture(scope="module")
def page(served: Served):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or $ACUMEN_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(served.url + "/")
        yield page
        browser.close()
    assert not errors


def row_positions(page) -> list[int]:
    return [
        int(p)
        for p in page.locator("#rows tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.position)"
        )
    ]


def test_the_page_shows_the_dataset(page) -> None:
    page.wait_for_selector("#rows tbody tr")
    assert page.text_content("#samples-count") == str(N)
    assert row_positions(page) == list(range(N))
    # Metadata is text on the page, never markup.
    assert HOSTILE in page.locator("#rows tbody").inner_text()
    assert page.locator("#rows tbody b, #rows tbody img").count() == 0
    page.wait_for_selector(".hist[data-column=label] rect")
    assert page.locator(".hist[data-column=label] rect").count() == 3


def test_a_filter_narrows_the_table_and_errors_show_inline(page) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page.fill("#filter", "label == 1")
    page.press("#filter", "Enter")
    sync_api.expect(page.locator("#rows tbody tr")).to_have_count(4)
    assert row_positions(page) == [1, 4, 7, 10]
    page.fill("#filter", "label >")
    page.press("#filter", "Enter")
    sync_api.expect(page.locator("#filter-error")).to_contain_text("cannot read the filter")
    assert row_positions(page) == [1, 4, 7, 10]  # the last good result stays


def test_a_thumbnail_shows_the_samples_pixels(page) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page.fill("#filter", "")
    page.press("#filter", "Enter")
    thumb = page.locator("#gallery img.thumb[data-position='3']")
    thumb.wait_for()
    sync_api.expect(thumb).to_have_js_property("naturalWidth", 8)
    shot = np.asarray(Image.open(io.BytesIO(thumb.screenshot())).convert("RGB"))
    height, width = shot.shape[:2]
    assert tuple(shot[height // 2, width // 2]) == colour(3)
    # The sample's detail: its statistics, drawn from the whole array.
    thumb.click()
    page.wait_for_selector("#detail .stats")
    assert "min 7" in page.text_content("#detail .stats")
