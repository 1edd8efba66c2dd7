"""``netgpt forecast``: train the traffic forecaster and score it on recorded series.

A typer sub-app, mounted by :mod:`netgpt.cli`; a thin layer over
:mod:`netgpt.edge_models.training` and :mod:`netgpt.edge_models.forecasting`. Project errors are
shown as one line (exit code 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from netgpt.cli_errors import friendly

__all__ = ["forecast_app", "print_scores"]

forecast_app = typer.Typer(
    help="Traffic forecasting: the GPT-2 forecaster, its site adapters and the baselines.",
    no_args_is_help=True,
)

console = Console()


def _fmt(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def print_scores(scores: Any, out: Console | None = None) -> None:
    """Print one dataset's :class:`DatasetScores` as a table per horizon."""
    con = out or console
    metrics = scores.metrics()
    for hkey, per_method in metrics.items():
        table = Table(
            title=f"{scores.dataset} {hkey}: {scores.series} series, test rows "
            f"{scores.split}..{scores.rows - 1}"
        )
        for col in ("method", "NMAE", "MAE", "RMSE"):
            table.add_column(col, justify="right" if col != "method" else "left")
        best = min(
            (v["nmae"] for k, v in per_method.items() if not k.startswith("forecaster")),
            default=float("nan"),
        )
        for name, vals in per_method.items():
            mark = ""
            if name.startswith("forecaster") and not math.isnan(best) and best > 0:
                mark = f"  ({(vals['nmae'] / best - 1) * 100:+.1f}% vs best baseline)"
            table.add_row(name, _fmt(vals["nmae"]) + mark, _fmt(vals["mae"]), _fmt(vals["rmse"]))
        con.print(table)
    for note in scores.notes:
        con.print(f"note: {note}")


@forecast_app.command("train")
@friendly
def train(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the weights [default: the package's]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The shared data folder [default: $NETGPT_DATA_DIR or ../shared/data].",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (1 is fastest on a busy 2-core box).")
    ] = 1,
    steps: Annotated[
        int | None, typer.Option(help="Global-model training steps [default: the shipped 4000].")
    ] = None,
    adapters: Annotated[
        bool, typer.Option("--adapters/--no-adapters", help="Also train the site adapters.")
    ] = True,
) -> None:
    """Train the global forecaster and the site adapters on the shared training portions."""
    import dataclasses

    from netgpt.edge_models.training import (
        DEFAULT_ADAPTER_SETTINGS,
        DEFAULT_SETTINGS,
        train_default_model,
    )

    settings = DEFAULT_SETTINGS
    if steps is not None:
        if steps < 1:
            raise typer.BadParameter("--steps must be at least 1")
        settings = dataclasses.replace(settings, steps=steps)
    report = train_default_model(
        data_dir,
        out,
        seed,
        settings=settings,
        adapter_settings=DEFAULT_ADAPTER_SETTINGS if adapters else None,
        threads=threads,
        progress=lambda msg: console.print(msg, highlight=False),
    )
    table = Table(title=f"trained into {report.out_dir}")
    for col in ("part", "steps", "seconds", "first loss", "final loss", "size"):
        table.add_column(col)
    table.add_row(
        "global",
        str(report.global_steps),
        f"{report.global_seconds:.1f}",
        _fmt(report.global_losses[0] if report.global_losses else float("nan")),
        _fmt(report.global_losses[-1] if report.global_losses else float("nan")),
        f"{report.global_size_bytes / 1e6:.2f} MB",
    )
    for ad in report.adapters:
        table.add_row(
            ad.site,
            str(ad.steps),
            f"{ad.seconds:.1f}",
            _fmt(ad.first_loss),
            _fmt(ad.final_loss),
            f"{ad.size_bytes / 1e3:.0f} kB",
        )
    console.print(table)
    console.print(f"total {report.total_seconds:.1f} s with {report.threads} thread(s)")


@forecast_app.command("adapt")
@friendly
def adapt(
    data: Annotated[
        Path, typer.Option("--data", help="An .npz with X (time x series) or x, and t.")
    ],
    site: Annotated[str, typer.Option(help="Name of the adapter (the site or link group).")],
    out: Annotated[Path, typer.Option("--out", help="The adapted weights folder to write.")],
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Start from these [default: the package's].")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Adapter steps [default: 300].")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 1,
) -> None:
    """Train one site's LoRA adapter on a recording (e.g. 'netgpt telemetry export')."""
    import dataclasses

    from netgpt.edge_models.evaluation import load_series
    from netgpt.edge_models.training import ADAPT_SETTINGS, adapt_to_data

    settings = ADAPT_SETTINGS
    if steps is not None:
        if steps < 1:
            raise typer.BadParameter(f"--steps {steps}: give at least 1")
        settings = dataclasses.replace(settings, steps=steps)
    recording = load_series(data)
    written, report = adapt_to_data(recording, site, out, weights_dir=weights, settings=settings,
                                    threads=threads)
    console.print(
        f"adapter {report.site}: {len(report.series)} series, {report.steps} steps in "
        f"{report.seconds:.1f} s, loss {_fmt(report.first_loss)} -> {_fmt(report.final_loss)}, "
        f"{report.size_bytes / 1e3:.0f} kB; weights in {written}")
    console.print(f"score it on the rows it did not see: netgpt forecast eval --data {data} "
                  f"--weights {written}")


@forecast_app.command("eval")
@friendly
def eval_file(
    data: Annotated[
        Path, typer.Option("--data", help="An .npz with X (time x series) or x, and t.")
    ],
    horizon: Annotated[
        list[int] | None, typer.Option("--horizon", help="Horizons to score [default: 1 12].")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scores here.")] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Weights folder [default: the package's].")
    ] = None,
    stride: Annotated[int, typer.Option(help="Score every N-th origin (1: all).")] = 1,
    int8: Annotated[bool, typer.Option("--int8", help="Score the int8 forecaster.")] = False,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 1,
) -> None:
    """Score the forecaster, its adapted variant and the baselines on FILE (last 20% as test)."""
    import torch

    from netgpt.edge_models.forecasting import score_file

    torch.set_num_threads(max(1, threads))
    horizons = tuple(horizon) if horizon else (1, 12)
    if min(horizons) < 1 or stride < 1:
        raise typer.BadParameter("horizons and --stride must be positive")
    scores = score_file(data, horizons=horizons, weights_dir=weights, stride=stride, int8=int8)
    print_scores(scores)
    if json_out is not None:
        payload = {scores.dataset: scores.metrics()}
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {json_out}")
