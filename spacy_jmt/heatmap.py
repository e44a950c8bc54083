"""Heatmaps of the task-to-task weights (`JMT.task_weights`) as standalone SVG."""

from html import escape
from typing import List, Sequence

CELL = 44  # pixels per cell
FONT = 12


def heatmap_svg(
    values: Sequence[Sequence[float]],
    rows: List[str],
    columns: List[str],
    title: str = "",
    row_axis: str = "receiver",
    column_axis: str = "sender",
) -> str:
    """Draw a matrix of values in [0, 1] as an SVG heatmap with labelled axes.

    values (Sequence[Sequence[float]]): len(rows) x len(columns) values in [0, 1].
    rows (List[str]): The row labels (top to bottom).
    columns (List[str]): The column labels (left to right).
    title (str): A title above the map.
    row_axis (str): The name of the row axis.
    column_axis (str): The name of the column axis.
    RETURNS (str): The SVG document.
    """
    if len(values) != len(rows) or any(len(row) != len(columns) for row in values):
        raise ValueError(f"values must be {len(rows)} x {len(columns)}")
    longest_row = max([len(r) for r in rows] + [4])
    longest_column = max([len(c) for c in columns] + [4])
    left = FONT * (longest_row * 0.62 + 2)  # room for the row labels
    top = FONT * (2 + (2 if title else 0) + longest_column * 0.62)  # and the column labels
    right = FONT * (longest_column * 0.45 + 1)  # the last column label leans right
    width = max(left + CELL * len(columns) + right, FONT * (len(title) * 0.62 + 2))
    height = top + CELL * len(rows) + 3 * FONT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="sans-serif" font-size="{FONT}">'
    ]
    if title:
        out.append(_text(width / 2, 1.5 * FONT, title, 'text-anchor="middle" font-weight="bold"'))
    middle = left + CELL * len(columns) / 2
    out.append(_text(middle, top - 0.2 * FONT, f"{column_axis} →", _AXIS))
    for c, name in enumerate(columns):
        x, y = left + CELL * (c + 0.5), top - 1.6 * FONT
        out.append(_text(x, y, name, f'transform="rotate(-45 {x:.1f} {y:.1f})"'))
    for r, name in enumerate(rows):
        y = top + CELL * (r + 0.5) + 0.35 * FONT
        out.append(_text(left - FONT / 2, y, name, 'text-anchor="end"'))
        for c, value in enumerate(values[r]):
            v = min(max(float(value), 0.0), 1.0)
            shade = round(255 * (1 - v))  # white (0) to blue (1)
            x0, y0 = left + CELL * c, top + CELL * r
            out.append(
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{CELL}" height="{CELL}" '
                f'fill="rgb({shade},{shade},255)" stroke="#ccc"/>'
            )
            colour = "white" if v > 0.55 else "black"
            attrs = f'text-anchor="middle" fill="{colour}"'
            out.append(_text(x0 + CELL / 2, y0 + CELL / 2 + 0.35 * FONT, f"{v:.2f}", attrs))
    note = f"↓ {row_axis}; each row sums to 1 over what it may hear"
    out.append(_text(FONT, top + CELL * len(rows) + 2 * FONT, note, 'font-style="italic"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"


_AXIS = 'text-anchor="middle" font-style="italic"'


def _text(x: float, y: float, text: str, attrs: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {attrs}>{escape(text)}</text>'
