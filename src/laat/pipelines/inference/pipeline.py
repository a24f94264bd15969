from kedro.pipeline import Node, Pipeline

from laat.pipelines.data_validation.nodes import require_valid

from .nodes import check_new_rows, monitor, score_rows


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                check_new_rows,
                ["inference_rows", "inference_metadata"],
                "inference_validation_report",
                name="check_new_rows",
            ),
            Node(
                require_valid,
                ["inference_rows", "inference_validation_report"],
                "inference_valid_rows",
                name="require_valid_new_rows",
            ),
            Node(
                score_rows,
                ["inference_valid_rows", "inference_metadata", "params:inference", "params:evaluation"],
                "inference_predictions",
                name="score_rows",
            ),
            Node(
                monitor,
                ["inference_predictions", "inference_metadata", "params:evaluation"],
                ["inference_metrics", "inference_fairness_by_group"],
                name="monitor",
            ),
        ]
    )
