"""Figure helpers: tiling and labelled figures."""

from __future__ import annotations

import numpy as np

from vae_pipeline import plotting


def test_mosaic_places_tiles_row_by_row_with_white_gaps():
    images = np.stack(
        [np.full((2, 3, 1), value, np.float32) for value in (0.1, 0.2, 0.3)]
    )
    grid = plotting.mosaic(images, rows=2, cols=2, gap=1)
    assert grid.shape == (5, 7, 1)
    assert np.all(grid[0:2, 0:3] == np.float32(0.1))
    assert np.all(grid[0:2, 4:7] == np.float32(0.2))
    assert np.all(grid[3:5, 0:3] == np.float32(0.3))
    assert np.all(grid[2, :] == 1.0) and np.all(grid[:, 3] == 1.0)  # the gaps
    assert np.all(grid[3:5, 4:7] == 1.0)  # an empty cell stays blank


def test_image_grid_labels_its_axes():
    images = np.random.default_rng(0).random((4, 5, 5, 1)).astype(np.float32)
    figure = plotting.image_grid(
        images,
        rows=2,
        cols=2,
        title="grid",
        xlabel="z[0]",
        ylabel="z[1]",
        xticks=[-1.0, 1.0],
        yticks=[1.0, -1.0],
    )
    axis = figure.axes[0]
    assert axis.get_title() == "grid"
    assert axis.get_xlabel() == "z[0]" and axis.get_ylabel() == "z[1]"
    assert [t.get_text() for t in axis.get_xticklabels()] == ["-1.00", "1.00"]
