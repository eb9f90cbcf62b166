"""A self-contained HTML report of a backtest (plotly, works offline).

Sections: metrics, price with trade markers per symbol, equity against buy-and-hold,
drawdown, monthly returns heatmap, and the trade table.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from stratvector.backtest.result import BacktestResult

MAX_PRICE_PANELS = 8


def build_report(result: BacktestResult, bars: dict[str, pd.DataFrame], title: str) -> str:
    """The report as one HTML string (plotly.js embedded once)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from stratvector.analytics import monthly_returns

    figs: list[tuple[str, go.Figure]] = []
    trades = result.trades
    orders = result.orders
    for sym in result.symbols[:MAX_PRICE_PANELS]:
        df = bars.get(sym)
        if df is None:
            continue
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=df.index, y=df["close"], name=f"{sym} close", line={"width": 1}))
        o = orders[orders["symbol"] == sym]
        buys, sells = o[o["quantity"] > 0], o[o["quantity"] < 0]
        fig.add_trace(
            go.Scatter(
                x=buys["time"],
                y=buys["price"],
                mode="markers",
                name="buy",
                marker={"symbol": "triangle-up", "size": 9, "color": "#1a9850"},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=sells["time"],
                y=sells["price"],
                mode="markers",
                name="sell",
                marker={"symbol": "triangle-down", "size": 9, "color": "#d73027"},
            )
        )
        fig.update_layout(title=f"{sym}: price and fills", height=360)
        figs.append((f"price-{sym}", fig))

    eq = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    eq.add_trace(go.Scatter(x=result.index, y=result.equity, name="strategy"), row=1, col=1)
    eq.add_trace(
        go.Scatter(
            x=result.index, y=result.benchmark_equity, name="buy and hold", line={"dash": "dot"}
        ),
        row=1,
        col=1,
    )
    dd = result.equity / result.equity.cummax() - 1.0
    eq.add_trace(
        go.Scatter(
            x=result.index, y=dd, name="drawdown", fill="tozeroy", line={"color": "#d73027"}
        ),
        row=2,
        col=1,
    )
    eq.update_yaxes(tickformat=".0%", row=2, col=1)
    eq.update_layout(title="Equity against buy-and-hold, and drawdown", height=560)
    figs.append(("equity", eq))

    table = monthly_returns(result.returns)
    months = [c for c in table.columns if c != "year"]
    z = table[months].to_numpy(dtype=float)
    heat = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(m) for m in months],
            y=[str(y) for y in table.index],
            colorscale="RdYlGn",
            zmid=0.0,
            text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.1%}")(z),
            texttemplate="%{text}",
            hoverongaps=False,
        )
    )
    heat.update_layout(title="Monthly returns", height=max(300, 28 * len(table) + 120))
    figs.append(("monthly", heat))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right}th{background:#f4f4f4}.metrics{display:flex;gap:32px;align-items:flex-start}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(repr(result.strategy))} on {', '.join(map(html.escape, result.symbols))}, "
        f"{result.index[0]:%Y-%m-%d} to {result.index[-1]:%Y-%m-%d}, {len(result.index)} bars.</p>",
        "<h2>Metrics</h2>",
        _metrics_table(result.metrics),
    ]
    first = True
    for key, fig in figs:
        parts.append(f"<div id='{key}'>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
        parts.append("</div>")
        first = False
    parts.append(f"<h2>Trades ({len(trades)})</h2>")
    parts.append(_trade_table(trades))
    parts.append("</body></html>")
    return "\n".join(parts)


def _metrics_table(metrics: dict[str, float], columns: int = 3) -> str:
    """The metrics as ``columns`` tables side by side."""
    items = list(metrics.items())
    per = -(-len(items) // columns)
    tables = []
    for c in range(columns):
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{format_metric(k, v)}</td></tr>"
            for k, v in items[c * per : (c + 1) * per]
        )
        tables.append(f"<table>{rows}</table>")
    return f"<div class='metrics'>{''.join(tables)}</div>"


def _trade_table(trades: pd.DataFrame) -> str:
    if trades.empty:
        return "<p>No trades.</p>"
    shown = trades.copy()
    for col in ("entry_time", "exit_time"):
        shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M").fillna("open")
    for col in ("entry_price", "exit_price", "pnl", "commission", "slippage"):
        shown[col] = shown[col].map(lambda v: f"{v:,.2f}")
    shown["quantity"] = shown["quantity"].map(lambda v: f"{v:,.4g}")
    shown["return"] = shown["return"].map(lambda v: f"{v:.2%}")
    return shown.to_html(index=False, border=0, classes="trades")


_PCT_KEYS = (
    "return",
    "cagr",
    "volatility",
    "drawdown",
    "var",
    "cvar",
    "exposure",
    "win_rate",
    "best",
    "worst",
    "alpha",
    "avg_return",
    "downside",
)


def format_metric(key: str, value: float) -> str:
    """Human format: percentages for return-like metrics, counts as integers."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if key.startswith("n_") or key.endswith("_duration"):
        return f"{value:,.0f}"
    if any(k in key for k in _PCT_KEYS) and "ratio" not in key:
        return f"{value:.2%}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4f}"
