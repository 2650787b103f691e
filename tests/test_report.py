"""The static HTML report (``gvae_bench.report``), checked in a real browser.

Every page of a report is opened in headless Chromium (Debian's ``chromium`` package) over the
Chrome DevTools Protocol; a page fails on a broken image, a link to a missing file or anchor, an
external resource, a console error, or a leaderboard table missing from it. Without a browser
(or without ``websocket-client``) the browser tests are skipped with the reason, except in CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import REPO, invoke_cli
from gvae_bench.report import write_report

REFERENCE = REPO / "results" / "reference"
IN_CI = os.environ.get("CI", "").lower() == "true"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars"]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser check must run in CI)")
    pytest.skip(reason)


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


# ------------------------------------------------------------------------------------------------
# a minimal DevTools Protocol client


class Browser:
    """Headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, executable: str, profile: Path):
        import websocket  # websocket-client, from the test extra

        self.process = subprocess.Popen(
            [executable, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._port(profile)
        targets = []
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                targets = [t for t in json.load(answer) if t.get("type") == "page"]
            if targets:
                break
            time.sleep(0.1)
        assert targets, "Chromium opened no page"
        self.socket = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=60,
                                                  suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _port(self, profile: Path) -> int:
        """The port Chromium chose (it writes DevToolsActivePort into its profile folder)."""
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"Chromium exited: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("Chromium did not open its DevTools port within 60 s")

    def call(self, method: str, **params):
        self.next_id += 1
        ident = self.next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append(message)

    def open(self, url: str) -> list[str]:
        """Load ``url``; returns the console errors, exceptions and failed loads it logged."""
        self.events = []
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => setTimeout(r, 50))")  # let late log entries arrive
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif event["method"] == "Runtime.exceptionThrown":
                errors.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return errors

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = find_browser()
    if executable is None:
        _unavailable("no Chromium found (install Debian's chromium: apt-get install chromium)")
    try:
        import websocket  # noqa: F401
    except ImportError:
        _unavailable("websocket-client is not installed (pip install '.[test]')")
    session = Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield session
    session.close()


# ------------------------------------------------------------------------------------------------
# checks


PAGE_FACTS = """(() => ({
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  sources: [...document.querySelectorAll('[src], link[href], script')].map(e => e.getAttribute('src') || e.getAttribute('href') || 'inline script'),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  tables: [...document.querySelectorAll('table.leaderboard')].map(t => t.dataset.table),
}))()"""


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids |= {value for key, value in attrs if key == "id"}


def _ids_of(path: Path) -> set[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.ids


def check_page(browser: Browser, page: Path, tables: list[str]) -> dict:
    """Open ``page``; fail on console errors, broken images, dangling or external links, or a missing
    leaderboard; returns what the page showed."""
    errors = browser.open(page.resolve().as_uri())
    assert not errors, f"{page.name}: {errors}"
    facts = browser.evaluate(PAGE_FACTS)
    assert not facts["broken"], f"{page.name}: broken images {facts['broken']}"
    doubled = sorted({i for i in facts["ids"] if facts["ids"].count(i) > 1})
    assert not doubled, f"{page.name}: ids used twice {doubled}"
    for source in facts["sources"]:
        assert not re.match(r"^[a-z]+:", source), f"{page.name}: external resource {source}"
        assert source != "inline script", f"{page.name}: the report needs no scripts"
    for href in facts["links"]:
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc, f"{page.name}: non-relative link {href}"
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
        assert target.exists(), f"{page.name}: link to a missing file {href}"
        if parts.fragment:
            ids = set(facts["ids"]) if target == page.resolve() else _ids_of(target)
            assert parts.fragment in ids, f"{page.name}: link to a missing anchor {href}"
    for table in tables:
        assert table in facts["tables"], f"{page.name}: leaderboard {table} missing (has {facts['tables']})"
    return facts


def check_report(browser: Browser, out: Path) -> None:
    index = out / "report" / "index.html"
    pages = sorted((out / "report").glob("*.html"))
    assert index in pages
    for page in pages:
        dataset = page.stem
        tables = [] if page == index else sorted(p.stem for p in (out / "leaderboards" / dataset).glob("table*.csv"))
        check_page(browser, page, tables)
    text = index.read_text(encoding="utf-8")
    for dataset in (p.stem for p in pages if p != index):
        assert f'href="{dataset}.html"' in text


# ------------------------------------------------------------------------------------------------
# the reports


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory, data_root) -> Path:
    """A small sweep: two models on ring8, two seeds, the smoke profile."""
    out = tmp_path_factory.mktemp("report-smoke") / "results"
    done = invoke_cli("--models", "vae,wgan_gp", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0,1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory) -> Path:
    """A copy of the committed reference results (mnist and ring8 only, to stay fast)."""
    out = tmp_path_factory.mktemp("report-reference") / "results"
    for dataset in ("mnist", "ring8"):
        for sub in ("runs", "leaderboards"):
            shutil.copytree(REFERENCE / sub / dataset, out / sub / dataset)
    return out


def test_smoke_report_builds(smoke_results):
    index = write_report(smoke_results)
    assert index == smoke_results / "report" / "index.html"
    page = (smoke_results / "report" / "ring8.html").read_text(encoding="utf-8")
    for model in ("vae", "wgan_gp"):
        assert f'data-model="{model}"' in page
    assert 'id="leaderboard-table4"' in page and 'id="leaderboard-table_modes"' in page
    assert "published" in page  # ring8 has published mode-coverage rows
    assert "scatter over the real test points" in page  # the mixture samples are scatters
    # a second build replaces the first whole, leaving nothing beside it
    write_report(smoke_results)
    assert sorted(p.name for p in smoke_results.iterdir() if p.name.startswith(".")) == []
    plots = list((smoke_results / "report" / "plots").rglob("*.png"))
    assert plots and all(p.stat().st_size < 60_000 for p in plots)
    # the run pictures are linked, never copied
    assert not list((smoke_results / "report").rglob("samples.png"))


def test_smoke_report_in_browser(smoke_results, browser):
    write_report(smoke_results)
    check_report(browser, smoke_results)


def test_reference_report_in_browser(reference_results, browser):
    write_report(reference_results)
    check_report(browser, reference_results)
    # the mnist page: table4 with all five models, each with its samples image (loaded)
    browser.open((reference_results / "report" / "mnist.html").resolve().as_uri())
    rows = browser.evaluate("""[...document.querySelectorAll('#leaderboard-table4 tbody tr.measured')].map(r => ({
        model: r.dataset.model,
        samples: [...r.querySelectorAll('img.samples')].filter(i => i.complete && i.naturalWidth > 0).length}))""")
    models = {row["model"] for row in rows}
    assert models == {"alpha_gan", "gvae", "vae", "vae_gan", "wgan_gp"}
    assert all(row["samples"] == 1 for row in rows), rows
    # published rows are labelled, and every measured cell says what made it
    cells = browser.evaluate("""[...document.querySelectorAll('#leaderboard-table4 tbody tr.measured td.num')]
        .map(td => td.title)""")
    assert cells and all("config" in c and "commit" in c and "generated" in c for c in cells), cells[:3]
    assert browser.evaluate("document.querySelectorAll('#leaderboard-table4 tr.published .tag.published').length") > 0


def test_a_metric_whose_best_is_a_target_has_no_direction_arrow(reference_results):
    """Copying (C_T) is best near 0, not at an end of its scale: its header says so, with no arrow."""
    write_report(reference_results)
    page = (reference_results / "report" / "mnist.html").read_text(encoding="utf-8")
    header = re.search(r'<th[^>]*title="([^"]*)"[^>]*>copying ([^<]*)</th>', page)
    assert header is not None and header.group(2) == "(≈ target)", header and header.groups()
    assert header.group(1).startswith("not ranked")
    assert re.search(r">vendi ↑</th>", page)  # a ranked metric keeps its arrow


def test_every_leaderboard_has_a_title_not_its_file_name(reference_results):
    """Each table section of a page is headed by what the table is (``Table 7's bounds run by run…``),
    not by the stem of its CSV (``table7_bounds``)."""
    write_report(reference_results)
    page = (reference_results / "report" / "mnist.html").read_text(encoding="utf-8")
    headings = dict(re.findall(r'<section class="table" id="([^"]+)">\s*<h2>([^<]*)</h2>', page))
    tables = sorted(p.stem for p in (reference_results / "leaderboards" / "mnist").glob("table*.csv"))
    assert "table7_bounds" in tables
    assert sorted(headings) == tables, headings
    assert all(title != name and not title.startswith("table") for name, title in headings.items()), headings


def test_report_without_leaderboards(tmp_path):
    """Records without leaderboards still make a page that says what to run."""
    for sub in ("runs",):
        shutil.copytree(REFERENCE / sub / "ring8", tmp_path / sub / "ring8")
    write_report(tmp_path)
    page = (tmp_path / "report" / "ring8.html").read_text(encoding="utf-8")
    assert "runner.py leaderboard --dataset ring8" in page
    assert "table.leaderboard" not in page and 'class="leaderboard' not in page


def screenshot(page: Path, png: Path, executable: str | None = None) -> None:
    """A screenshot of a report page, as in the README (``docs/report-mnist.png``)."""
    executable = executable or find_browser()
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([executable, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                        "--window-size=1400,1800", page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
