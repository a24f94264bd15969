"""The `laat` console script (and `python -m laat`): the project's commands (`laat run ...`,
`laat draft-metadata ...`, see laat.cli) without going through `kedro`."""

import sys

from kedro.framework.project import configure_project


def main(*args, **kwargs):
    configure_project(__package__ or "laat")
    from laat.cli import cli

    return cli(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
