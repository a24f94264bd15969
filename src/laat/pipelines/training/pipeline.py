from kedro.pipeline import Node, Pipeline

from .nodes import attribution_table, diagnose_prior, fit_model, report_trust, split_rows


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_rows, ["validated", "metadata", "params:training"], ["train_rows", "test_rows"], name="split_rows"
            ),
            Node(
                diagnose_prior,
                ["train_rows", "metadata", "prior", "params:training"],
                ["prior_diagnostic", "prior_diagnostic_plot", "prior_diagnostic_metrics"],
                name="diagnose_prior",
            ),
            Node(fit_model, ["train_rows", "metadata", "prior", "params:training"], "model", name="fit_model"),
            Node(report_trust, "model", ["trust_decision", "trust_metrics"], name="report_trust"),
            Node(attribution_table, ["model", "prior", "metadata"], "attributions", name="attribution_table"),
        ]
    )
