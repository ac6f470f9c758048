"""The run report and `status`: a real run writes its HTML page, which Debian's Chromium (installed if missing)
renders headless without a console error or a request off the machine; `status` lists the runs of the project
(a full retrain, then a skip) and the served model's lineage, without TensorFlow."""
import base64
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import websocket

from pipeline import report
from pipeline.config import load_config
from project_helpers import REPO, apt_install, run_cli, write_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium():
    return apt_install("chromium", "chromium")


REPORTING = {"logging": {"report": True}}


@pytest.fixture(scope="module")
def first_run(project):
    """The first run of conftest's, with the report the test settings leave out."""
    completed, summary = run_cli(write_config(project, REPORTING))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed, summary


@pytest.fixture(scope="module")
def second_run(project, first_run):
    """A second run with no new span: the policy skips retraining."""
    completed, summary = run_cli(write_config(project, REPORTING))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed, summary


class DevTools:
    """One page of a headless Chromium, driven over the DevTools protocol (websocket-client): commands, and
    the events received while waiting for their answers."""

    def __init__(self, chromium: str, profile: pathlib.Path):
        self.browser = subprocess.Popen(
            [chromium, "--headless=new", "--disable-gpu", "--no-sandbox", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert self.browser.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
            page = next(target for target in json.load(answer) if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.events, self.last_id = [], 0

    def send(self, method: str, **params) -> dict:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last_id:
                assert "error" not in message, message
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(message.get("method") == event for message in self.events):
            self.events.append(json.loads(self.socket.recv()))

    def close(self) -> None:
        self.socket.close()
        self.browser.terminate()
        self.browser.wait(timeout=30)


def problems_seen(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, error log entries, and any request that is not the page's own file or
    an inline data: URI (the report must need no network)."""
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            problems.append(f"console.{params['type']}: {params['args']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "data:")):
            problems.append(f"request: {params['request']['url']}")
    return problems


def test_a_run_writes_its_report_with_every_section(project, first_run):
    completed, summary = first_run
    page = pathlib.Path(summary["report"])
    assert page == report.report_path(load_config(project / "pipeline.yaml"), summary["run_id"])
    assert page.parent == load_config(project / "pipeline.yaml").pipeline_root / "reports"
    assert f"report: {page}" in completed.stdout
    html = page.read_text()
    for section, title in report.SECTIONS.items():
        assert f'<section id="{section}"><h2>{title}</h2>' in html
    assert "No statistics" not in html and "trip_miles" in html                    # TFDV's statistics of the span
    assert "None: the span matches the curated schema" in html                     # no anomalies
    assert "Decision: <b>full_retrain</b>" in html and "no blessed model yet" in html
    assert 'alt="training curves"' in html                                        # loss/AUC per epoch
    assert 'alt="gated metrics"' in html and 'alt="per-slice metrics with the slice gates"' in html
    assert "payment_type=Cash" in html                                            # per slice (fairness.slices)
    assert summary["push"]["version"] in html and 'alt="gated metrics of the pushed versions"' in html
    assert "Serving validation: <span class=\"ok\">passed" in html
    assert "http://" not in html and "https://" not in html                        # nothing to fetch


def test_the_report_renders_in_headless_chromium_without_console_errors(project, first_run, chromium):
    page = pathlib.Path(first_run[1]["report"])
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(chromium, pathlib.Path(profile))
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable")
            browser.send("Page.navigate", url=page.as_uri())
            browser.wait_for("Page.loadEventFired")
            checked = browser.send("Runtime.evaluate", returnByValue=True, expression="""({
                sections: document.querySelectorAll('section h2').length,
                images: document.images.length,
                broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length})""")
            size = browser.send("Page.getLayoutMetrics")["cssContentSize"]
            shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        finally:
            browser.close()
    assert problems_seen(browser.events) == []
    values = checked["result"]["value"]
    assert values["sections"] == len(report.SECTIONS)
    # statistics, training curves, gates, per-slice chart, history (no drift chart: nothing to compare with yet)
    assert values["images"] == page.read_text().count("<img ") == 5 and values["broken"] == 0
    screenshot = project / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE) and screenshot.stat().st_size > 50_000
    print(f"screenshot: {screenshot}")


def test_report_command_writes_the_newest_run_or_the_one_named(project, first_run, second_run):
    config_file = project / "pipeline.yaml"
    completed = subprocess.run([sys.executable, "-m", "pipeline", "report", "--config", str(config_file)],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    page = report.report_path(load_config(config_file), second_run[1]["run_id"])
    assert completed.stdout.strip() == f"report: {page}"
    html = page.read_text()
    assert "Decision: <b>skip</b>" in html and "No model was trained in this run." in html
    assert html.count("<tr><td>" + first_run[1]["push"]["version"]) == 1           # the history still has it

    named = subprocess.run([sys.executable, "-m", "pipeline", "report", "--config", str(config_file),
                            "--run", "no-such-run"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert named.returncode == 1 and "has no run no-such-run" in named.stderr


def test_status_lists_the_runs_and_the_served_models_lineage_without_tensorflow(project, first_run, second_run):
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "status",
                                "--config", str(project / "pipeline.yaml")],
                               cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "tensorflow_model_analysis", "tfx")]
    lines = completed.stdout.splitlines()
    first, second = first_run[1], second_run[1]
    version = first["push"]["version"]
    first_line = next(line for line in lines if line.startswith(first["run_id"]))
    second_line = next(line for line in lines if line.startswith(second["run_id"]))
    assert lines.index(second_line) < lines.index(first_line)                     # newest first
    assert first_line.split()[3:6] == ["full_retrain", "ok", version]
    assert second_line.split()[3:6] == ["skip", "ok", "-"]
    assert f"{version} (served)" in completed.stdout
    assert f"trainer run:     {first['run_id']} (Trainer)" in completed.stdout
    assert "data spans:      1" in completed.stdout
    assert "transform graph: " in completed.stdout and "/Transform/transform_graph/" in completed.stdout
    assert "evaluation:      " in completed.stdout and "/Evaluator/evaluation/" in completed.stdout
