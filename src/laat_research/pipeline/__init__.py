"""The benchmark sweep as one Kedro pipeline (not per dataset: the sweep spans datasets)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
