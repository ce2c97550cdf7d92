"""Image preparation: ``sources`` validated into ``profiles``, scaled into
``images``. A building block: each pipeline that reads images reuses it under a
namespace of its own (``Pipeline(..., namespace=...)``), so ingestion,
retraining and scoring check and scale pixels the same way."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.prepare_images.nodes import scale_sources, validate_sources


def create_pipeline(**kwargs) -> Pipeline:
    """Create the image-preparation pipeline.

    Returns:
        Pipeline from ``sources`` (image sources by name) and
        ``params:data_ingestion`` to ``profiles`` and ``images``.
    """
    return Pipeline(
        [
            Node(
                func=validate_sources,
                inputs=["sources", "params:data_ingestion"],
                outputs="profiles",
                name="validate_sources_node",
            ),
            Node(
                func=scale_sources,
                inputs=["sources", "profiles", "params:data_ingestion"],
                outputs="images",
                name="scale_sources_node",
            ),
        ]
    )


def prepared(namespace: str, *, sources: str, profiles: str, images: str) -> Pipeline:
    """The pipeline under ``namespace``, its datasets named as the caller's."""
    return Pipeline(
        create_pipeline(),
        namespace=namespace,
        inputs={"sources": sources},
        outputs={"profiles": profiles, "images": images},
        parameters={"params:data_ingestion"},
    )


def scaled(namespace: str, *, sources: str, profiles: str, images: str) -> Pipeline:
    """The scaling step alone under ``namespace``, for a caller that validated
    its sources already (``profiles`` as ``validate_sources`` gives them):
    retraining profiles each incoming batch to set aside the unreadable ones,
    and reading them again would double what comes from object storage."""
    return Pipeline(
        create_pipeline().only_nodes("scale_sources_node"),
        namespace=namespace,
        inputs={"sources": sources, "profiles": profiles},
        outputs={"images": images},
        parameters={"params:data_ingestion"},
    )
