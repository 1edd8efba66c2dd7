"""Terminal rendering shared by the CLI and the demo (rich tables). No logic lives here."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from netgpt.telemetry.views import LinkUtilization

__all__ = ["utilization_table"]


def utilization_table(links: Sequence[LinkUtilization], title: str, *, limit: int = 0) -> Table:
    """Links with both directions' load, coloured by the busier direction's utilization."""
    table = Table(title=title)
    table.add_column("link", no_wrap=True)
    for col in ("Mbit/s", "a→b Mbit/s", "a→b", "b→a Mbit/s", "b→a"):
        table.add_column(col, justify="right")
    table.add_column("state")
    for lk in links[: limit or None]:
        colour = "red" if lk.utilization >= 0.8 else "yellow" if lk.utilization >= 0.6 else "green"
        table.add_row(
            f"{lk.a}-{lk.b}",
            f"{lk.capacity_mbps:,.0f}",
            f"{lk.a_to_b_mbps:,.1f}",
            f"[{colour}]{lk.a_to_b_mbps / lk.capacity_mbps:6.1%}[/]",
            f"{lk.b_to_a_mbps:,.1f}",
            f"[{colour}]{lk.b_to_a_mbps / lk.capacity_mbps:6.1%}[/]",
            "up" if lk.up else "[red]DOWN[/]",
        )
    return table
