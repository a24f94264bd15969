"""Guards on code shape that review would otherwise have to catch by eye."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_BODY_LINES = 60


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


def test_no_long_function_without_a_reason():
    long = list(_long_functions())
    assert not long, (
        f"functions over {MAX_BODY_LINES} body lines with no 'long because' reason "
        f"in their docstring (split them or say why): {long}"
    )
