"""Validate a raw dataset against the schema its metadata defines."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
