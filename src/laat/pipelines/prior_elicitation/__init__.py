"""Elicit (or load) the dataset's feature-importance prior: LLM, expert, oracle or random."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
