"""Markdown tables and myst-nb glue: how a notebook hands numbers, tables and figures to its page."""
from __future__ import annotations

from typing import Sequence



def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits: int = 2, none: str = "–") -> str:
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def glue(name: str, value, display: bool = False) -> None:
    """myst_nb.glue (imported here so the package does not need myst-nb to import)."""
    from myst_nb import glue as _glue

    _glue(name, value, display=display)


def glue_number(name: str, value: float, digits: int = 2) -> float:
    """Glue a number rounded to ``digits`` (the precision nbval checks and the prose shows)."""
    rounded = round(float(value), digits)
    glue(name, rounded)
    return rounded


def glue_figure(name: str, fig, dpi: int = 150) -> None:
    """Glue a matplotlib figure as a PNG for ``{glue:figure}`` (shown once, in the prose); 150 dpi keeps
    ticks and labels sharp at the page width (the book's CSS scales the image to the text column)."""
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    glue(name, Image(data=buffer.getvalue(), format="png"))


def glue_text(name: str, text: str) -> None:
    """Glue a string as markdown, for the inline ``{glue:md}`name``` role."""
    from IPython.display import Markdown

    glue(name, Markdown(text))


def show_markdown(text: str, glue_as: str | None = None) -> None:
    """Display markdown in the notebook; optionally glue it for the page's prose."""
    from IPython.display import Markdown, display

    if glue_as:
        glue(glue_as, Markdown(text))
    else:
        display(Markdown(text))
