"""The `laat` console script (and `python -m laat`): the project's commands (`laat run ...`,
`laat draft-metadata ...`, see laat.cli) without going through `kedro`."""

import sys
from pathlib import Path

from kedro.framework.project import configure_project


def main(*args, **kwargs):
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    from laat.cli import cli

    return cli(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
