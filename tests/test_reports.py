"""What a person reads after `make run`: `dvc metrics show` fits a terminal; every DVC plot is titled,
labelled and renders from a page that needs no network."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
DVC = yaml.safe_load((PROJECT / "dvc.yaml").read_text())


def test_dvc_metrics_are_the_stage_summaries_and_fit_160_columns():
    metrics = [next(iter(m)) for stage in DVC["stages"].values() for m in stage.get("metrics", [])]
    assert sorted(metrics) == sorted(f"reports/{s}/summary.json" for s in DVC["stages"])
    for path in metrics:  # committed with dvc.lock: a handful of numbers each
        summary = json.loads((PROJECT / path).read_text())
        assert 1 <= len(summary) <= 3 and all(v is None or isinstance(v, (int, float)) for v in summary.values())
    shown = subprocess.run(["dvc", "metrics", "show"], cwd=PROJECT, capture_output=True, text=True, check=True)
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 + len(metrics), shown.stdout
    assert max(map(len, lines)) <= 160, shown.stdout


def test_every_plot_is_defined_once_with_a_title_labels_and_a_template():
    assert not [s for s, stage in DVC["stages"].items() if stage.get("plots")]  # top level only
    templates = {p.stem for p in (PROJECT / ".dvc/plots").glob("*.json")}
    for entry in DVC["plots"]:
        (name, plot), = entry.items()
        assert plot["title"] and plot["x_label"] and plot["y_label"], name
        assert plot["template"] in templates | {"linear", "bar_horizontal"}, name
        for path, field in plot["y"].items():
            header = (PROJECT / path).read_text().splitlines()[0].split(",")
            assert field in header and plot["x"] in header, (name, path, header)


@pytest.mark.slow
def test_offline_page_has_every_plot_with_data_and_no_cdn(tmp_path):
    from tasks.offline_plots import render

    page = render(tmp_path / "plots").read_text()
    assert "<script src=" not in page and "cdn.jsdelivr" not in page  # Vega is inline
    for entry in DVC["plots"]:
        (name, plot), = entry.items()
        # DVC leaves out a plot whose files have no rows (grpo_offline_loss when grpo.mode is online)
        has_rows = any(len((PROJECT / path).read_text().splitlines()) > 1 for path in plot["y"])
        assert (plot["title"] in page) == has_rows, name
