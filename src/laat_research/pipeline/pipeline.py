from kedro.pipeline import Node, Pipeline

from .nodes import benchmark_metrics, plot_auc_vs_k, run_benchmark, summarise


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                run_benchmark,
                "params:benchmark",
                ["benchmark_results", "benchmark_results_csv", "benchmark_run_info"],
                name="run_benchmark",
            ),
            Node(
                summarise,
                ["benchmark_results", "benchmark_run_info", "params:benchmark"],
                "benchmark_summary",
                name="summarise_benchmark",
            ),
            Node(
                plot_auc_vs_k,
                "benchmark_results",
                [
                    "benchmark_auc_vs_k_overview",
                    "benchmark_auc_vs_k_lr",
                    "benchmark_auc_vs_k_mlp",
                    "benchmark_auc_vs_k_trust_lr",
                    "benchmark_auc_vs_k_trust_mlp",
                ],
                name="plot_benchmark",
            ),
            Node(
                benchmark_metrics,
                ["benchmark_results", "benchmark_run_info"],
                "benchmark_metrics",
                name="benchmark_metrics",
            ),
        ]
    )
