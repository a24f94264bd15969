from kedro.pipeline import Node, Pipeline

from .nodes import attribution_table, fit_model, split_rows


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(split_rows, ["validated", "metadata", "params:training"], ["train_rows", "test_rows"],
                 name="split_rows"),
            Node(fit_model, ["train_rows", "metadata", "prior", "params:training"], "model", name="fit_model"),
            Node(attribution_table, ["model", "prior"], "attributions", name="attribution_table"),
        ]
    )
