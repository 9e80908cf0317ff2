"""Screenshots of what a person sees after `make run`, from this project's own stores: the MLflow runs,
the evaluate run and its comparison chart, the sft step curves, the registry; the Prefect flow runs,
an sft flow run and the artifacts; the offline DVC plots page. Headless Chromium (Debian's package
`chromium`) driven by Playwright (`pip install playwright`; it uses that browser, it downloads none).

    make screenshots                  # from the project root, after `make run` -> docs/screenshots/*.png
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "docs" / "screenshots"
MLFLOW_PORT, PREFECT_PORT = os.environ.get("MLFLOW_PORT", "5057"), os.environ.get("PREFECT_PORT", "4317")


def wait(url: str, seconds: int = 180) -> None:
    for _ in range(seconds):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"error: {url} did not answer within {seconds} s")


def ids() -> dict[str, str]:
    """The newest evaluate and sft runs, the experiment, the newest registry version, the newest sft flow run."""
    m = sqlite3.connect(PROJECT / "mlflow.db")
    exp = m.execute("select experiment_id from experiments where name='omicsforge'").fetchone()[0]

    def run(stage: str) -> str:
        return m.execute("select r.run_uuid from runs r join tags t on t.run_uuid = r.run_uuid where "
                         "t.key = 'stage' and t.value = ? order by r.start_time desc limit 1", (stage,)).fetchone()[0]

    version = m.execute("select max(version) from model_versions where name = 'omicsforge'").fetchone()[0]
    p = sqlite3.connect(PROJECT / ".prefect" / "prefect.db")
    flow_run = p.execute("select fr.id from flow_run fr join flow f on f.id = fr.flow_id where f.name = 'sft' "
                         "order by fr.created desc limit 1").fetchone()[0]
    return {"exp": exp, "evaluate": run("evaluate"), "sft": run("sft"), "version": version, "flow_run": flow_run}


def main() -> None:
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PREFECT_HOME": str(PROJECT / ".prefect"), "PREFECT_SERVER_API_PORT": PREFECT_PORT,
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    bin_dir = Path(sys.executable).parent
    servers = [
        subprocess.Popen([bin_dir / "mlflow", "server", "--backend-store-uri", f"sqlite:///{PROJECT / 'mlflow.db'}",
                          "--artifacts-destination", str(PROJECT / "mlartifacts"), "--host", "127.0.0.1",
                          "--port", MLFLOW_PORT, "--workers", "1"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([bin_dir / "prefect", "server", "start", "--host", "127.0.0.1", "--port", PREFECT_PORT],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait(f"http://127.0.0.1:{MLFLOW_PORT}/health")
        wait(f"http://127.0.0.1:{PREFECT_PORT}/api/health")
        subprocess.run([sys.executable, "-m", "tasks.cli", "plots", "--out", "dvc_plots"], cwd=PROJECT, check=True,
                       stdout=subprocess.DEVNULL)
        i = ids()
        ml, pf = f"http://127.0.0.1:{MLFLOW_PORT}/#", f"http://127.0.0.1:{PREFECT_PORT}"
        run = f"{ml}/experiments/{i['exp']}/runs"
        shots = [
            ("mlflow_runs", f"{ml}/experiments/{i['exp']}/runs", 1000),
            ("mlflow_evaluate_run", f"{run}/{i['evaluate']}", 1400),
            ("mlflow_evaluate_chart", f"{run}/{i['evaluate']}/artifacts/plots/evaluate_accuracy.png", 1000),
            ("mlflow_sft_curves", f"{run}/{i['sft']}/model-metrics", 1400),
            ("mlflow_registry", f"{ml}/models/omicsforge", 900),
            ("mlflow_model_version", f"{ml}/models/omicsforge/versions/{i['version']}", 1300),
            ("prefect_flow_runs", f"{pf}/runs", 1100),
            ("prefect_sft_run", f"{pf}/runs/flow-run/{i['flow_run']}", 1000),
            ("prefect_sft_parameters", f"{pf}/runs/flow-run/{i['flow_run']}?tab=Parameters", 1400),
            ("prefect_artifacts", f"{pf}/artifacts", 1000),
            ("dvc_plots", (PROJECT / "dvc_plots" / "index.html").as_uri(), 5200),
        ]
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            for name, url, height in shots:
                page.set_viewport_size({"width": 1500, "height": height})
                page.goto(url)
                page.wait_for_load_state("load")
                time.sleep(6)  # the UIs poll their APIs (never network-idle); charts draw after the data
                for label in ("Skip",):  # Prefect's "join the community" dialog hides the page
                    if (button := page.get_by_role("button", name=label)).count():
                        button.first.click()
                        time.sleep(1)
                if (close := page.locator("[aria-label='Close assistant'], [aria-label='Close']")).count() \
                        and name.startswith("mlflow"):
                    close.first.click()  # MLflow's assistant side panel takes a third of the width
                    time.sleep(1)
                page.screenshot(path=OUT / f"{name}.png")
                print(f"{OUT / name}.png <- {url}")
            browser.close()
    finally:
        for server in servers:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
