"""Project commands, for `kedro <command>` in the project and for the `laat` console script.

Kedro loads ``<package>.cli`` and lets its ``cli`` group override built-in commands, so:

- ``run`` is Kedro's own run command, except that a run stopped by a user error (bad data,
  metadata, parameters, a missing input file, an LLM that cannot be reached) ends with
  ``Error: <message>`` and one hint line instead of a long traceback. ``--verbose`` shows the
  traceback; any other exception keeps it. At exit the process skips the garbage collector's
  passes over everything torch, MLflow and pandas left in memory (``gc.freeze``): a cyclic
  collection of that heap while the interpreter shuts down cost a `kedro run` 1-1.5 s, and the
  memory goes back to the system anyway.
- ``draft-metadata`` writes a first metadata YAML for a new CSV (see ``laat.metadata_draft``).
"""

from __future__ import annotations

import atexit
import gc
import sys
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import CONTEXT_SETTINGS

VERBOSE_HINT = "run again with --verbose for the full traceback"


@click.group(context_settings=CONTEXT_SETTINGS, name="laat")
def cli():
    """LAAT project commands."""


def _hint(exc: BaseException) -> str | None:
    """What to check for a user error, or None for anything else (a bug keeps its traceback).

    Types are imported here, on the error path, to keep `kedro` start-up fast.
    """
    from kedro.io import DatasetError
    from kedro.validation import ParameterValidationError
    from pydantic import ValidationError

    from laat.datasets import MetadataError
    from laat.elicit.errors import ElicitationError
    from laat.pipelines.inference.nodes import ModelLookupError
    from laat.priors import PriorError
    from laat.schema import DataValidationError

    hints = [
        (
            DataValidationError,
            "fix the CSV or its metadata; every failed check is in the validation report "
            "under data/08_reporting/<dataset>/",
        ),
        (
            ModelLookupError,
            "run the chain for the dataset first (`kedro run --pipeline <dataset>`) or name "
            "an existing version with --params model=<version>",
        ),
        (MetadataError, "fix the dataset's YAML in conf/base/datasets/ (`laat draft-metadata <csv>` drafts one)"),
        (PriorError, "fix the prior file the message names (expert priors: conf/base/priors/<dataset>.yml)"),
        ((ParameterValidationError, ValidationError), "fix the parameter in conf/*/parameters_*.yml or in --params"),
        (
            ElicitationError,
            "check prior_elicitation in conf/base/parameters_prior_elicitation.yml "
            "(model, base_url, gguf_path) or choose another prior_source",
        ),
        (DatasetError, "check that the file exists and its entry in conf/base/catalog*.yml"),
    ]
    return next((hint for kind, hint in hints if isinstance(exc, kind)), None)


def _run(verbose: bool, **kwargs):
    atexit.unregister(gc.freeze)  # once per process, however many runs it makes (tests)
    atexit.register(gc.freeze)  # runs before the interpreter's shutdown collections
    try:
        return kedro_run.callback(**kwargs)
    except Exception as exc:
        hint = None if verbose else _hint(exc)
        if hint is None:
            raise
        click.echo(f"Error: {exc}", err=True)
        click.echo(f"Hint: {hint}; {VERBOSE_HINT}.", err=True)
        sys.exit(1)


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *kedro_run.params,
        click.Option(["--verbose"], is_flag=True, help="Show the full traceback when a run fails."),
    ],
    help=kedro_run.help,
    short_help=kedro_run.short_help,
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)


@cli.command("draft-metadata")
@click.argument("csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", default=None, help="Target column (default: guessed from names and values).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the YAML (default: conf/base/datasets/<csv stem>.yml).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def draft_metadata(csv: Path, target: str | None, out: Path | None, force: bool):
    """Draft conf/base/datasets/<name>.yml for CSV: types, categories, ranges, nullability and the
    target are inferred; descriptions are TODO placeholders to fill in before a run."""
    from laat.datasets import DEFAULT_METADATA_DIR, MetadataError
    from laat.metadata_draft import draft_metadata as draft
    from laat.metadata_draft import many_categories, placeholders, write_draft

    try:
        metadata = draft(csv, target=target)
        path = write_draft(metadata, out or DEFAULT_METADATA_DIR / f"{csv.stem}.yml", overwrite=force)
    except (MetadataError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    t = metadata["target"]
    click.echo(
        f"Wrote {path}: target {t['column']!r} {t.get('classes') or 'numeric (regression)'}, "
        f"{len(metadata['features'])} features, {len(placeholders(metadata))} placeholders to fill in."
    )
    for name, n in many_categories(metadata).items():
        click.echo(
            f"Check {name!r}: {n} categories, each a one-hot column; an ID or free text? "
            f"Drop the column from the CSV or group its values."
        )
    click.echo(f"Next: replace every TODO in {path}, then `kedro run --pipeline {metadata['name']}`.")
