"""Drive the widgets tutorial in a real JupyterLab with Debian's Chromium.

The test starts JupyterLab on a loopback port, opens a copy of
notebooks/05_widgets.ipynb and runs every cell. In the page it then checks
that the timeline draws one mark per transition shipped, that a mouse drag
across it reaches the kernel, and that the anomaly threshold slider changes
the flags. Every request the browser makes to a host other than 127.0.0.1 is
aborted.

Screenshots of the four widgets are written to the test's temporary folder;
with STATEBITS_UPDATE_SCREENSHOTS=1 they also replace the ones in docs/img/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_widgets.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "img"

# Flags for headless Chromium in a container without network: no sandbox and
# GPU, no background traffic, and every host name except 127.0.0.1 unresolvable.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

SERVER_START_TIMEOUT = 60  # seconds
RUN_ALL_TIMEOUT = 240  # seconds; the notebook takes about 40 s in a kernel
KERNEL_REPLY_TIMEOUT = 30  # seconds

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium"),
]


# -- JupyterLab ---------------------------------------------------------------


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_request(base: str, token: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving one folder, with its own config, runtime and settings folders."""

    def __init__(self, root_dir: Path, home: Path) -> None:
        self.port = free_loopback_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"

        settings = home / "lab-settings" / "@jupyterlab"
        (settings / "notebook-extension").mkdir(parents=True)
        (settings / "apputils-extension").mkdir(parents=True)
        # Render every cell, so widgets below the fold exist in the page.
        (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # Without this, a toast asking to fetch Jupyter news covers the page's corner.
        (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))

        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root_dir}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",
        ]  # fmt: skip

        self.log = (home / "jupyterlab.log").open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}; see {self.log.name}")
            try:
                status, _ = api_request(self.base, self.token, "/api/status")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status = 0
            if status == 200:
                return
            time.sleep(0.25)
        raise TimeoutError(f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT} s; see {self.log.name}")

    def stop(self) -> None:
        try:
            status, body = api_request(self.base, self.token, "/api/kernels")
            for kernel in json.loads(body) if status == 200 else []:
                api_request(self.base, self.token, f"/api/kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        # The server runs in its own session, so this signal reaches it and the kernels it started.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("notebooks")
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    server = JupyterLab(work, tmp_path_factory.mktemp("jupyter-home"))
    try:
        yield server
    finally:
        server.stop()


# -- browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def loopback_page(browser) -> tuple[Any, list[str]]:
    """Open a page that aborts every request to a host other than 127.0.0.1, and the list of aborted URLs."""
    aborted: list[str] = []

    def only_loopback(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page, aborted


@pytest.fixture(scope="module")
def browser_page(chromium, lab):
    page, aborted = loopback_page(chromium)
    try:
        yield page, aborted
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def notebook(browser_page, lab):
    """The tutorial opened in JupyterLab, with every cell run."""
    page, aborted = browser_page
    page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext && window.jupyterapp.shell.currentWidget.sessionContext.session && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel")
    code_cells = sum(cell["cell_type"] == "code" for cell in json.loads(NOTEBOOK.read_text())["cells"])

    started = time.monotonic()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """(count) => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
            return prompts.length === count && prompts.every(text => /^\\[\\d+\\]:$/.test(text));
        }""",
        arg=code_cells,
        timeout=RUN_ALL_TIMEOUT * 1000,
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return page, aborted, time.monotonic() - started


def code_cell(page, text: str):
    """The code cell whose source contains ``text``."""
    return page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=text))


def save_screenshot(locator, name: str, folder: Path) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(folder / name))
    if os.environ.get("STATEBITS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, SCREENSHOTS / name)


def run_new_cell(page, source: str) -> str:
    """Append a cell with ``source`` below the last one, run it from the page and return its text output."""
    count = page.locator(".jp-CodeCell").count()
    page.evaluate(
        """async (source) => {
            const app = window.jupyterapp;
            const notebook = app.shell.currentWidget.content;
            notebook.activeCellIndex = notebook.widgets.length - 1;
            await app.commands.execute('notebook:insert-cell-below');
            notebook.activeCell.model.sharedModel.setSource(source);
            await app.commands.execute('notebook:run-cell');
        }""",
        source,
    )
    new_cell = page.locator(".jp-CodeCell").nth(count)
    output = new_cell.locator(".jp-OutputArea-output")
    output.first.wait_for(timeout=KERNEL_REPLY_TIMEOUT * 1000)
    return output.first.inner_text()


# -- the test -----------------------------------------------------------------


def test_widgets_notebook_in_jupyterlab(notebook, tmp_path):
    page = notebook[0]
    try:
        check_notebook(*notebook, tmp_path)
    except BaseException:
        path = tmp_path / "failure.png"
        page.screenshot(path=str(path))
        print(f"screenshot of the page at the failure: {path}")
        raise


def check_notebook(page, aborted: list[str], run_seconds: float, tmp_path: Path) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [text for text in errors.all_inner_texts() if "Traceback" in text or "Error" in text]
    assert tracebacks == [], tracebacks

    # The timeline draws one circle per transition shipped, and its subtitle states how many.
    timeline = code_cell(page, "timeline = TimelineWidget(taxi, max_points=2000)")
    chart = timeline.locator(".vega-embed svg.marks")
    chart.wait_for()
    subtitle = chart.locator(".role-title-subtitle text").first.text_content()
    match = re.match(r"([\d,]+) of 10,319 transitions shown", subtitle)
    assert match, subtitle
    shipped = int(match.group(1).replace(",", ""))
    marks = chart.locator(".transitions_marks path")
    assert shipped <= 2000
    assert marks.count() == shipped

    # The cell after it brushed the NYC marathon weekend from Python.
    status = timeline.locator(".statebits-status")
    assert status.inner_text().startswith("97 transitions selected from 2014-11-01 00:00:00 UTC")
    assert chart.locator(".brush_brush").count() == 1

    # Drag across the left half of the plot: the kernel computes the new selection.
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".role-frame.root > g > path.background").first.bounding_box()
    y = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] * 0.20, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.45, y, steps=12)
    page.mouse.up()
    page.wait_for_function(
        "(el) => /^[\\d,]+ transitions selected from 2014-0[789]/.test(el.textContent)",
        arg=status.element_handle(),
        timeout=KERNEL_REPLY_TIMEOUT * 1000,
    )
    label = status.inner_text()
    label_count = int(label.split(" ")[0].replace(",", ""))
    assert label_count > 1000
    save_screenshot(timeline.locator(".jp-OutputArea-output").first, "timeline_widget.png", tmp_path)

    # A cell run from the page reads the same selection in the kernel.
    printed = run_new_cell(page, "print(len(timeline.selected), timeline.selected_range[0].isoformat(), timeline.selected_range[1].isoformat())")
    count, start, end = printed.split()
    assert int(count) == label_count
    assert "2014-07-20" < start < end < "2014-10-20"

    # Moving the threshold slider to its maximum leaves nothing flagged.
    anomalies = code_cell(page, "anomalies = AnomalyWidget(taxi, detector=detector)")
    anomaly_status = anomalies.locator(".statebits-status")
    before = anomaly_status.inner_text()
    anomalies.locator(".noUi-target").first.scroll_into_view_if_needed()
    handle = anomalies.locator(".noUi-handle").first.bounding_box()
    track = anomalies.locator(".noUi-target").first.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 40, handle["y"] + handle["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "(el) => el.textContent.startsWith('0 of 10,319 transitions flagged')",
        arg=anomaly_status.element_handle(),
        timeout=KERNEL_REPLY_TIMEOUT * 1000,
    )
    assert before != anomaly_status.inner_text()
    assert run_new_cell(page, "print(len(anomalies.flagged))").strip() == "0"
    save_screenshot(anomalies.locator(".jp-OutputArea-output").first, "anomaly_widget.png", tmp_path)

    # The fork tree and the collection render their charts too.
    tree = code_cell(page, "tree = ForkTreeWidget([nile, no_dam, revised])")
    assert tree.locator(".vega-embed svg.marks .transitions_marks path").count() == len(
        json.loads(run_new_cell(page, "import json; print(json.dumps(tree.frame['step'].tolist()))"))
    )
    save_screenshot(tree.locator(".jp-OutputArea-output").first, "fork_tree_widget.png", tmp_path)

    overview = code_cell(page, "overview = CollectionWidget(sensors)")
    assert overview.locator(".vega-embed").count() == 2  # the overview and machine_temperature's timeline
    assert overview.locator(".overview_marks path").count() > 4
    save_screenshot(overview.locator(".jp-OutputArea-output").first, "collection_widget.png", tmp_path)

    # Nothing tried to leave the machine, and the whole cycle stayed within its budget.
    assert aborted == []
    assert run_seconds < RUN_ALL_TIMEOUT


def test_static_fallbacks_in_nbconvert_html(chromium, tmp_path):
    """The tutorial exported by nbconvert, without widget state, shows each widget's SVG picture with no network."""
    exported = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir", str(tmp_path), str(NOTEBOOK)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr

    # Serve the page from loopback, because the browser may load nothing else.
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    page, _ = loopback_page(chromium)
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/{NOTEBOOK.stem}.html")
        figures = page.locator("figure.statebits-static-chart")
        captions = figures.locator("figcaption").all_inner_texts()

        assert figures.count() == 4
        assert figures.locator("svg.marks").count() == 4
        assert [caption.split(":")[0].split(" of ")[0] for caption in captions] == [
            "TimelineWidget",
            "ForkTreeWidget",
            "AnomalyWidget",
            "CollectionWidget",
        ]
        assert figures.first.locator(".transitions_marks path").count() <= 600
    finally:
        page.context.close()
        server.shutdown()
        server.server_close()
