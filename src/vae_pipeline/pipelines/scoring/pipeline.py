"""Scoring pipeline: new images in, a table of scores and its figures out."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import prepare_images
from vae_pipeline.pipelines.scoring.nodes import (
    collect_scoring_sources,
    find_similar_images,
    plot_score_histogram,
    score_images,
    scoring_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the scoring pipeline.

    Returns:
        Pipeline that validates the files under ``data/01_raw/scoring``, scores
        them with ``scoring_model`` (the champion, or ``--params model_uri=...``)
        into ``image_scores``, draws their histogram and finds the nearest
        training images of the first few.
    """
    return Pipeline(
        [
            Node(
                func=collect_scoring_sources,
                inputs=["scoring_files", "params:data_ingestion"],
                outputs="scoring_sources",
                name="collect_scoring_sources_node",
            ),
            prepare_images.prepared(
                "scoring",
                sources="scoring_sources",
                profiles="scoring_profiles",
                images="scoring_images",
            ),
            Node(
                func=score_images,
                inputs=["scoring_images", "scoring_model", "params:scoring"],
                outputs="image_scores",
                name="score_images_node",
            ),
            Node(
                func=scoring_metrics,
                inputs="image_scores",
                outputs="scoring_tracking_metrics",
                name="track_scoring_metrics_node",
            ),
            Node(
                func=plot_score_histogram,
                inputs=["image_scores", "params:scoring"],
                outputs="score_histogram_plot",
                name="plot_score_histogram_node",
            ),
            Node(
                func=find_similar_images,
                inputs=[
                    "scoring_images",
                    "scoring_model",
                    "train_split",
                    "params:scoring",
                ],
                outputs=["similar_images", "similar_images_plot"],
                name="find_similar_images_node",
            ),
        ],
        tags=["scoring"],
    )
