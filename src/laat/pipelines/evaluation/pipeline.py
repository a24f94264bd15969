from kedro.pipeline import Node, Pipeline

from .nodes import plot_results, predict_test, register_model, score


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(predict_test, ["model", "test_rows", "metadata"], "predictions", name="predict_test"),
            Node(
                score,
                ["predictions", "test_rows", "metadata", "params:evaluation"],
                ["metrics", "fairness_by_group"],
                name="score",
            ),
            Node(
                plot_results,
                ["attributions", "predictions", "fairness_by_group", "prior", "metadata", "params:evaluation"],
                ["attribution_plot", "performance_plot", "fairness_plot"],
                name="plot_results",
            ),
            Node(
                register_model,
                ["model", "test_rows", "metrics", "prior", "metadata", "params:evaluation"],
                "registration",
                name="register_model",
            ),
        ]
    )
