import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from netgpt.edge_models.forecasting import load_forecaster, score_file
from netgpt.edge_models.gpt_forecaster import GPTForecaster, GPTForecasterConfig
from netgpt.errors import ForecastError
from netgpt.forecast_cli import forecast_app

pytestmark = pytest.mark.unit

runner = CliRunner()
TINY = GPTForecasterConfig(
    n_layer=1, n_embd=16, n_head=2, n_bins=64, recent_len=24, season_len=16, max_horizon=12,
    loss_positions=4, min_length=8,
)  # fmt: skip
METHODS = {"forecaster", "forecaster_adapted", "last", "seasonal_day", "moving_average", "ridge"}


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return GPTForecaster(TINY).save(tmp_path / "weights")


@pytest.fixture
def datafile(tmp_path):
    rng = np.random.default_rng(0)
    n = 700
    t = 1.1e9 + 300.0 * np.arange(n)
    day = 1 + 0.3 * np.sin(2 * np.pi * np.arange(n) / 288)
    x = np.c_[100 * day, 40 * day] * (1 + 0.05 * rng.standard_normal((n, 2)))
    x[50:53, 0] = np.nan
    path = tmp_path / "links.npz"
    np.savez(path, X=x, t=t, names=np.array(["r1_r2", "r2_r1"]))
    return path


@pytest.mark.parametrize("args", [[], ["train"], ["eval"]])
def test_help(args):
    got = runner.invoke(forecast_app, [*args, "--help"])
    assert got.exit_code == 0, got.output


def test_eval_scores_any_file_and_writes_the_benchmark_layout(weights, datafile, tmp_path):
    out = tmp_path / "scores.json"
    got = runner.invoke(
        forecast_app,
        ["eval", "--data", str(datafile), "--weights", str(weights), "--json", str(out),
         "--stride", "5"],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    payload = json.loads(out.read_text())
    assert list(payload) == ["links"]
    assert set(payload["links"]) == {"h1", "h12"}
    assert set(payload["links"]["h12"]) == METHODS
    assert set(payload["links"]["h1"]["ridge"]) == {"mae", "rmse", "nmae"}
    assert "equals the global model" in " ".join(got.output.split())


def test_eval_of_a_missing_file_is_one_clear_line(tmp_path):
    got = runner.invoke(forecast_app, ["eval", "--data", str(tmp_path / "nope.npz")])
    assert got.exit_code == 2
    assert "no such data file" in got.output


def test_score_file_with_int8_and_chosen_methods(weights, datafile):
    scores = score_file(
        datafile, weights_dir=weights, methods=("forecaster", "last"), int8=True, stride=10
    )
    assert set(scores.metrics()["h1"]) == {"forecaster", "last"}
    assert scores.methods["forecaster"].method == "forecaster_int8"


def test_load_forecaster_needs_weights(tmp_path):
    with pytest.raises(ForecastError, match="netgpt forecast train"):
        load_forecaster(tmp_path)


def test_a_method_that_cannot_run_on_a_file_is_left_out_and_none_is_an_error(tmp_path, weights):
    path = tmp_path / "seconds.npz"  # ten minutes of 1-second polls: no day-ago history
    x = 0.4 + 0.1 * np.sin(np.arange(600) / 20)
    np.savez(path, x=x, t=1.7e9 + np.arange(600.0))
    scores = score_file(path, weights_dir=weights, methods=("seasonal_day", "last"), stride=10)
    assert set(scores.methods) == {"last"}
    assert any(n.startswith("seasonal_day: not scored") and "86400 rows" in n
               for n in scores.notes)
    with pytest.raises(ForecastError, match="no method could be scored on seconds"):
        score_file(path, weights_dir=weights, methods=("seasonal_day",), stride=10)


def test_adapt_trains_a_site_adapter_on_a_recording_into_a_weights_folder(
    weights, datafile, tmp_path
):
    out = tmp_path / "adapted"
    got = runner.invoke(forecast_app, ["adapt", "--data", str(datafile), "--site", "lab-links",
                                       "--out", str(out), "--weights", str(weights),
                                       "--steps", "20"])
    assert got.exit_code == 0, got.output
    assert "adapter lab-links: 2 series, 20 steps" in " ".join(got.output.split())
    for name in ("config.json", "model.safetensors", "adapters/lab-links/adapter_config.json"):
        assert (out / name).is_file(), name
    sites = json.loads((out / "adapters" / "sites.json").read_text())["sites"]
    assert sites["lab-links"]["series"] == ["r1_r2", "r2_r1"]
    # the global model is copied unchanged; the adapter changes what the adapted method says
    assert (out / "model.safetensors").read_bytes() == (weights / "model.safetensors").read_bytes()
    scores = score_file(datafile, weights_dir=out, methods=("forecaster", "forecaster_adapted"),
                        stride=10)
    assert not any("equals the global model" in n for n in scores.notes)
    nmae = {m: s.scores[12].nmae for m, s in scores.methods.items()}
    assert nmae["forecaster"] != nmae["forecaster_adapted"]
    # adapting again keeps the first adapter and routes the series to the newest one
    again = runner.invoke(forecast_app, ["adapt", "--data", str(datafile), "--site", "lab2",
                                         "--out", str(out), "--weights", str(out), "--steps", "5"])
    assert again.exit_code == 0, again.output
    sites = json.loads((out / "adapters" / "sites.json").read_text())["sites"]
    assert sites["lab2"]["series"] == ["r1_r2", "r2_r1"] and sites["lab-links"]["series"] == []
    assert (out / "adapters" / "lab-links" / "adapter_config.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--site", "bad name!"], "site name 'bad name!'"),
        (["--site", "ok", "--steps", "0"], "--steps 0: give at least 1"),
        (["--site", "ok", "--out-shipped"], "holds the shipped weights"),
    ],
)
def test_adapt_refuses_bad_input_in_one_line(datafile, tmp_path, extra, message):
    from netgpt.edge_models.training import default_weights_dir

    out = str(default_weights_dir()) if "--out-shipped" in extra else str(tmp_path / "w")
    args = [a for a in extra if a != "--out-shipped"]
    got = runner.invoke(forecast_app, ["adapt", "--data", str(datafile), "--out", out, *args])
    assert got.exit_code == 2, got.output
    assert message in " ".join(got.output.split())
    assert "Traceback" not in got.output


def test_serve_checks_its_forecaster_before_starting_anything(tmp_path):
    from netgpt.cli import app

    got = runner.invoke(app, ["serve", "--proactive", "--forecast-site", "no-such-site",
                              "--state-dir", str(tmp_path), "--port", "1"])
    assert got.exit_code == 2, got.output
    assert "no adapter for site 'no-such-site'" in " ".join(got.output.split())
    assert not (tmp_path / "serve-network").exists()  # the network never started
