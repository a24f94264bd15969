"""`kedro viz build` exports the DAG of the registered pipelines as a static site."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_viz_build_exports_the_namespaced_chain(project_root):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    kedro = Path(sys.executable).with_name("kedro")
    done = subprocess.run(
        [str(kedro), "viz", "build"], cwd=project_root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    graph = json.loads((project_root / "build" / "api" / "main").read_text())
    names = {n["name"] for n in graph["nodes"]}
    for expected in [
        "check_dataset",
        "elicit_prior",
        "fit_model",
        "register_model",
        "diabetes.validated",
        "diabetes.prior",
        "diabetes.model",
    ]:
        assert expected in names, sorted(names)
    assert any(p["id"] == "all" for p in graph["pipelines"])
