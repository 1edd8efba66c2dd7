"""``netgpt intent-model``: train the edge intent model and its site adapters, read with it.

A typer sub-app, mounted by :mod:`netgpt.cli`; a thin layer over
:mod:`netgpt.edge_models.intent_training` and :mod:`netgpt.edge_models.intent_model`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from netgpt.cli_errors import friendly

__all__ = ["intent_model_app"]

intent_model_app = typer.Typer(
    help="The edge intent model: operator text + site context -> formal intent.",
    no_args_is_help=True,
)


@intent_model_app.command("train")
@friendly
def train(
    out: Annotated[Path, typer.Option("--out", help="Where to write the model.")] = Path(
        "build/intent_model"),
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps.")] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Stop training after this long.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the global model from the project's own corpus, then the site adapters.

    The shipped model (netgpt/edge_models/intent_weights) is this command with its defaults.
    """
    from dataclasses import replace

    from netgpt.edge_models.intent_training import IntentModelSettings, train_intent_model

    settings = IntentModelSettings(seed=seed)
    if steps is not None:
        if steps < 1:
            raise typer.BadParameter(f"--steps {steps} must be at least 1")
        settings = replace(settings, steps=steps)
    if max_minutes is not None:
        if max_minutes <= 0:
            raise typer.BadParameter(f"--max-minutes {max_minutes} must be positive")
        settings = replace(settings, max_minutes=max_minutes)
    card = train_intent_model(out, settings, log=typer.echo)
    typer.echo(json.dumps({k: v for k, v in card.items() if k not in ("losses", "settings")},
                          indent=2))


@intent_model_app.command("adapt")
@friendly
def adapt(
    site: Annotated[str, typer.Argument(help="The site whose own words to learn.")],
    examples: Annotated[
        Path, typer.Option("--examples", help="JSON lines: {\"text\", \"draft\", \"topology\"}.")
    ],
    weights: Annotated[Path | None, typer.Option("--weights", help="The model directory.")] = None,
) -> None:
    """Learn a site's own words from a handful of its requests (a LoRA adapter)."""
    from types import SimpleNamespace

    from netgpt.edge_models.intent_model import SHIPPED_INTENT_WEIGHTS, EdgeIntentModel
    from netgpt.edge_models.intent_training import train_site_adapter
    from netgpt.errors import ConfigError

    root = weights or SHIPPED_INTENT_WEIGHTS
    model = EdgeIntentModel.load(root)
    rows = []
    for n, line in enumerate(examples.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(SimpleNamespace(text=str(row["text"]), draft=dict(row["draft"]),
                                        topology=str(row["topology"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{examples}:{n}: not a JSON object with text, draft and "
                              f"topology ({exc})") from exc
    info = train_site_adapter(model, site, root / "adapters" / site, requests=rows)
    typer.echo(json.dumps(info, indent=2))
