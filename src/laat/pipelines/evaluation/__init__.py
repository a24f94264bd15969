"""Score the held-out rows, measure fairness by group, draw plots, register the model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
