from kedro.pipeline import Node, Pipeline

from .nodes import check_dataset, require_valid


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(check_dataset, ["raw", "metadata", "params:training"], "validation_report", name="check_dataset"),
            Node(require_valid, ["raw", "validation_report"], "validated", name="require_valid"),
        ]
    )
