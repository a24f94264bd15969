"""Score new rows with a registered model: `kedro run --pipeline inference --params dataset=<ds>,input=<file>`."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
