"""Plotly figures with titles, dollar axes and hover values, built from query frames."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

LAYOUT = dict(margin=dict(l=10, r=10, t=60, b=10), legend_title_text="", hovermode="x unified")


def spend_over_time(frame: pd.DataFrame, time_col: str, series_col: str, value_col: str,
                    title: str, stacked: bool = True, money: bool = True) -> go.Figure:
    """A stacked bar (or line) chart of a value over time, one colour per group."""
    data = frame.copy()
    data[value_col] = data[value_col].map(lambda v: float(v) if v is not None else 0.0)
    kwargs = dict(x=time_col, y=value_col, color=series_col, title=title,
                  labels={value_col: "Spend (USD)" if money else value_col.replace("_", " "),
                          time_col: time_col.capitalize(), series_col: ""})
    fig = px.bar(data, **kwargs) if stacked else px.line(data, markers=True, **kwargs)
    fig.update_layout(**LAYOUT, barmode="stack" if stacked else None)
    if money:
        fig.update_yaxes(tickprefix="$", tickformat=",.0f")
        fig.update_traces(hovertemplate="%{fullData.name}: $%{y:,.2f}<extra></extra>")
    else:
        fig.update_yaxes(tickformat=",.3s")
    return fig


def ranked_bar(frame: pd.DataFrame, label_col: str, value_col: str, title: str) -> go.Figure:
    """Horizontal bars, largest on top, for "top projects" and "top models"."""
    data = frame.copy()
    data[value_col] = data[value_col].map(float)
    data = data.sort_values(value_col)
    fig = px.bar(data, x=value_col, y=label_col, orientation="h", title=title,
                 labels={value_col: "Spend (USD)", label_col: ""}, text=value_col)
    fig.update_traces(texttemplate="$%{x:,.0f}", hovertemplate="%{y}: $%{x:,.2f}<extra></extra>")
    fig.update_xaxes(tickprefix="$", tickformat=",.0f")
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10), height=80 + 40 * max(len(data), 1))
    return fig
