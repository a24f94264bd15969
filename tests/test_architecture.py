"""Guards on code shape that review would otherwise have to catch by eye."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_BODY_LINES = 60
# Long functions that predate this check; each should be split or given a
# "long because" reason, then removed from here. Do not add new entries.
KNOWN_LONG = {  # the debt when this check came in (line counts after ruff format); split them, then drop them here
    ("laat_research/summary.py", "summary_markdown"),
    ("laat_research/sweep.py", "run_sweep"),
}


def _long_functions():
    """Yield (path, name, body_lines) for functions over the limit without a reason."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = node.end_lineno - node.body[0].lineno + 1
            doc = (ast.get_docstring(node) or "").lower()
            if lines > MAX_BODY_LINES and "long because" not in doc:
                yield path.relative_to(SRC).as_posix(), node.name, lines


def test_no_new_long_function_without_a_reason():
    new = [f for f in _long_functions() if f[:2] not in KNOWN_LONG]
    assert not new, (
        f"functions over {MAX_BODY_LINES} body lines with no 'long because' reason "
        f"in their docstring (split them or say why): {new}"
    )


def test_known_long_list_has_no_stale_entries():
    still_long = {f[:2] for f in _long_functions()}
    stale = KNOWN_LONG - still_long
    assert not stale, f"remove from KNOWN_LONG, now short or explained: {stale}"
