"""Split the validated rows and fit a LAAT model towards the dataset's prior."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
