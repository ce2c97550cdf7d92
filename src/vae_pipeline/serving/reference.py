"""What a registered model version keeps of its training images."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LatentReference:
    """What a model version keeps of its training images.

    Attributes:
        latent_means: Posterior means of (up to) the first N training images.
        image_ids: Their indices in the training split.
        data_version: The data version of that split.
        log_likelihoods: IWAE log-likelihoods of a random sample of training
            images, with ``iwae_samples`` samples: the distribution that outlier
            thresholds are quantiles of.
        iwae_samples: K of those estimates.
        outlier_quantile: A served image is an outlier when its negative
            log-likelihood exceeds this quantile of the training images'.
    """

    latent_means: np.ndarray
    image_ids: np.ndarray
    data_version: str | None
    log_likelihoods: np.ndarray
    iwae_samples: int
    outlier_quantile: float

    def outlier_threshold(self, quantile: float | None = None) -> float:
        """The negative log-likelihood above which an image is an outlier."""
        q = self.outlier_quantile if quantile is None else quantile
        return float(np.quantile(-self.log_likelihoods, q))

    def compare(self, negative_log_likelihoods: np.ndarray) -> dict[str, float]:
        """How far images' negative log-likelihoods (estimated with
        ``iwae_samples``) are from those of the training images.

        Returns:
            ``ks_statistic`` and ``p_value`` of the two-sample
            Kolmogorov-Smirnov test against the reference's, the
            ``outlier_fraction`` above :meth:`outlier_threshold` and the
            ``expected_outlier_fraction`` of images like the training ones.
        """
        from scipy.stats import ks_2samp  # scikit-learn's own dependency

        test = ks_2samp(negative_log_likelihoods, -self.log_likelihoods)
        return {
            "ks_statistic": float(test.statistic),
            "p_value": float(test.pvalue),
            "outlier_fraction": float(
                np.mean(negative_log_likelihoods > self.outlier_threshold())
            ),
            "expected_outlier_fraction": 1.0 - self.outlier_quantile,
        }

    def save(self, folder: str | os.PathLike[str]) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "latent_means.npy", self.latent_means)
        np.save(folder / "image_ids.npy", self.image_ids)
        np.save(folder / "log_likelihoods.npy", self.log_likelihoods)
        (folder / "reference.json").write_text(
            json.dumps(
                {
                    "data_version": self.data_version,
                    "iwae_samples": self.iwae_samples,
                    "outlier_quantile": self.outlier_quantile,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> LatentReference | None:
        folder = Path(folder)
        if not (folder / "reference.json").is_file():
            return None  # a version saved before references were kept
        settings = json.loads((folder / "reference.json").read_text())
        return cls(
            latent_means=np.load(folder / "latent_means.npy"),
            image_ids=np.load(folder / "image_ids.npy"),
            log_likelihoods=np.load(folder / "log_likelihoods.npy"),
            **settings,
        )
