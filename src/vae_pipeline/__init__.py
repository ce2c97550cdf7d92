"""vae-pipeline: Variational Autoencoders with Kedro, Keras 3 and MLflow."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) buries the pipeline log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
