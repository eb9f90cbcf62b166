"""HTML report of a parameter search: the metric over two parameters, the trade-off of
every set, the genetic search's progress, and the walk-forward out-of-sample equity."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd


def build_optimize_report(result: Any, walk: Any, title: str, heat: tuple[str, str] | None) -> str:
    """One self-contained HTML page (plotly.js embedded once)."""
    import plotly.graph_objects as go

    ranking = result.ranking
    label = result.objective.label()
    figs: list[tuple[str, go.Figure]] = []
    if heat is not None:
        x, y = heat
        grid = ranking.groupby([y, x])["score"].max().unstack(x)  # other parameters: their best
        fig = go.Figure(
            go.Heatmap(
                z=grid.to_numpy(),
                x=[str(v) for v in grid.columns],
                y=[str(v) for v in grid.index],
                colorscale="Viridis",
                colorbar={"title": label},
                hoverongaps=False,
            )
        )
        fig.update_layout(
            title=f"{label} over {x} and {y} (best over any other parameters)",
            xaxis_title=x,
            yaxis_title=y,
            height=520,
        )
        figs.append(("heatmap", fig))
    text = ranking[result.sweep.param_names].astype(str).agg(", ".join, axis=1)
    scatter = go.Figure(
        go.Scatter(
            x=ranking["max_drawdown"],
            y=ranking["sharpe"],
            mode="markers",
            text=text,
            marker={
                "color": ranking["cagr"],
                "colorscale": "RdYlGn",
                "showscale": True,
                "colorbar": {"title": "CAGR"},
                "size": 7,
            },
            hovertemplate="%{text}<br>sharpe %{y:.3f}<br>max drawdown %{x:.1%}<extra></extra>",
        )
    )
    scatter.update_layout(
        title="Every evaluated set: Sharpe against max drawdown, coloured by CAGR",
        xaxis_title="max drawdown",
        yaxis_title="sharpe",
        xaxis_tickformat=".0%",
        height=520,
    )
    figs.append(("scatter", scatter))
    if not result.history.empty:
        h = result.history
        fig = go.Figure(
            [
                go.Scatter(x=h["generation"], y=h["best"], name="best"),
                go.Scatter(x=h["generation"], y=h["mean"], name="mean"),
            ]
        )
        fig.update_layout(title=f"Genetic search: {label} by generation", height=360)
        figs.append(("history", fig))
    if walk is not None:
        fig = go.Figure(
            go.Scatter(x=walk.oos_equity.index, y=walk.oos_equity, name="out-of-sample equity")
        )
        for start in walk.windows["test_start"]:
            fig.add_vline(x=start, line={"width": 0.5, "dash": "dot", "color": "#999"})
        fig.update_layout(title="Walk-forward: stitched out-of-sample equity", height=420)
        figs.append(("walk-forward", fig))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse;"
        "font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(result.method)} search maximizing {html.escape(label)} "
        f"({html.escape(result.objective.aggregate)} over {_count(len(result.sweep.symbols), 'symbol')}); "
        f"{result.n_evaluated} sets evaluated. Best: {html.escape(str(result.best_params))}.</p>",
    ]
    for i, (key, fig) in enumerate(figs):
        parts.append(
            f"<div id='{key}'>{fig.to_html(full_html=False, include_plotlyjs=(i == 0))}</div>"
        )
    if walk is not None:
        parts.append("<h2>Walk-forward windows</h2>")
        parts.append(_table(walk.windows))
        parts.append("<h2>Parameter stability</h2>")
        parts.append(_table(walk.stability))
    parts.append("<h2>Top parameter sets</h2>")
    parts.append(_table(ranking.head(50).reset_index()))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, float_format=lambda v: f"{v:.4f}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
