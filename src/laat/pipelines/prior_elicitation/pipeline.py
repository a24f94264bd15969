from kedro.pipeline import Node, Pipeline

from .nodes import elicit_prior


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                elicit_prior,
                ["metadata", "validated", "params:prior_elicitation", "params:prior_source"],
                ["prior", "prior_yaml", "elicitation_record"],
                name="elicit_prior",
            ),
        ]
    )
