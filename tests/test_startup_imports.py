"""`kedro` start-up stays light: the project's modules import no torch, MLflow, openai or tenacity.

Kedro imports settings, hooks and the pipeline registry (hence every node module) before it
runs anything, and a `kedro run` whose answers are cached never calls an LLM. Counting
seconds would depend on the machine; which modules got imported does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mlflow", "openai", "tenacity")

CHILD = r"""
import json, sys
import laat.settings, laat.hooks, laat.pipeline_registry, laat.elicit.client, laat.elicit.calls, laat.elicit.run
pipelines = laat.pipeline_registry.register_pipelines()  # every node function imported
assert pipelines["__default__"].nodes
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])))
"""


def test_project_start_up_imports_no_heavy_package():
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *HEAVY],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []
