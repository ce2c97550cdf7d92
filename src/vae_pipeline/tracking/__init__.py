"""MLflow integration beyond what kedro-mlflow does on its own.

kedro-mlflow opens one MLflow run per ``kedro run`` and its datasets log metrics,
artifacts and the model. This package adds the VAE's MLflow model flavor, the
model registry operations and the project hooks that tie a run to the registry.
"""
