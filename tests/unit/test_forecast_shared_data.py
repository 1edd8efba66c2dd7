"""Checks on the shared traffic files (skipped when ../shared/data is absent)."""

import numpy as np
import pytest

from netgpt.edge_models.baselines import make_baseline
from netgpt.edge_models.evaluation import (
    chronological_split,
    evaluate,
    load_series,
    longest_segment,
)
from netgpt.edge_models.forecasting import load_forecaster
from netgpt.edge_models.training import SHARED_FILES, default_data_dir, default_weights_dir

pytestmark = pytest.mark.unit

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not all((DATA / rel).is_file() for rel in SHARED_FILES.values()),
    reason=f"shared traffic data not found under {DATA} (../shared/data/traffic)",
)
needs_weights = pytest.mark.skipif(
    not (default_weights_dir() / "model.safetensors").is_file(),
    reason="no shipped weights; run 'netgpt forecast train'",
)

# data/README.md reference figures (last 20% test, pooled NMAE)
REFERENCE = {
    "abilene": {("last", 1): 0.116, ("last", 12): 0.205, ("ridge", 1): 0.115,
                ("ridge", 12): 0.243, ("moving_average", 12): 0.206},
    "uk_backbone": {("last", 1): 0.014, ("last", 12): 0.087, ("ridge", 1): 0.013,
                    ("ridge", 12): 0.058},
}  # fmt: skip


@needs_data
@pytest.mark.parametrize("dataset", list(REFERENCE))
def test_baselines_reproduce_the_reference_figures(dataset):
    seg, _ = longest_segment(load_series(DATA / SHARED_FILES[dataset], name=dataset))
    split = chronological_split(seg.n_time)
    for name in {m for m, _ in REFERENCE[dataset]}:
        score = evaluate(make_baseline(name), seg, split=split, horizons=(1, 12))
        for (method, h), ref in REFERENCE[dataset].items():
            if method == name:
                assert score.scores[h].nmae == pytest.approx(ref, abs=0.0015), (name, h)


@needs_data
@needs_weights
def test_shipped_forecaster_forecasts_thirty_links():
    seg, _ = longest_segment(load_series(DATA / SHARED_FILES["abilene"]))
    hist = seg.values[:1000, :30]
    fc = load_forecaster().predict(hist, 12, series=seg.series[:30])
    assert fc.quantiles.shape == (30, 12, len(fc.levels))
    assert np.all(np.diff(fc.quantiles, axis=-1) >= 0)
