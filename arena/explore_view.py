"""What the Explore tab shows, as plain values: each method's results as gallery items (images
loaded from the catalog, with their scores) and the details of the image a user opens.
Explore is for looking, not judging: methods are named, side by side."""

from __future__ import annotations

import html

from PIL import Image

from clip_arena.analyzer.images import load_image
from clip_arena.analyzer.policy import ImagePolicy
from clip_arena.core.settings import Settings
from clip_arena.index.catalog import SUFFIX
from clip_arena.index.explore import Hit, search_all
from clip_arena.index.search import Searcher

DETAIL_SKIP = ("image_uri",)


def catalog_image(searcher: Searcher, row: int, limits=None) -> Image.Image:
    """A catalog image as pixels: the browser gets these, never a path on the server. `limits`: the
    catalog's fetch limits (Settings.catalog_limits), its owner's hosts allowed."""
    catalog = searcher.catalog
    uri = catalog.resolve_uri(catalog.table.column("image_uri")[row].as_py())
    return load_image(uri, limits) if limits is not None else load_image(uri)


def caption_of(searcher: Searcher, row: int) -> str:
    table = searcher.catalog.table
    return str(table.column("caption")[row].as_py() or "") if "caption" in table.column_names else ""


def gallery_items(searcher: Searcher, hits: list[Hit], limits=None) -> list[tuple[Image.Image, str]]:
    """(image, label) per hit; the label carries the score, shown under each image."""
    items = []
    for hit in hits:
        caption = caption_of(searcher, hit.row)
        items.append((catalog_image(searcher, hit.row, limits), f"{hit.score:.3f} · {caption or hit.image_id}"))
    return items


def details_markdown(searcher: Searcher, method: str, rank: int, hit: Hit) -> str:
    """The metadata of one result: its id, caption, score and every metadata column."""
    table = searcher.catalog.table
    columns = [n for n in table.column_names if not n.endswith(SUFFIX)]
    row = table.select(columns).slice(hit.row, 1).to_pylist()[0]  # one row, whatever the catalog's size
    lines = [f"**{html.escape(method)} #{rank}**: `{html.escape(hit.image_id)}`, score {hit.score:.4f}", ""]
    lines += ["| field | value |", "|---|---|"]
    for name, value in row.items():
        if name in DETAIL_SKIP:
            continue
        shown = html.escape(str(value)).replace("|", "\\|")
        lines.append(f"| {html.escape(name)} | {shown} |")
    return "\n".join(lines)


def run_explore(searcher: Searcher, text: str, image_file: str | None, methods: list[str], k: int,
                settings: Settings) -> dict[str, list[Hit]]:
    """Each chosen method's hits for a text, or else an uploaded image (loaded as every tab does)."""
    image = None
    if image_file and not (text or "").strip():  # an upload, read as every tab reads one (analyzer/policy.py)
        image = ImagePolicy.for_server(settings).load_upload(image_file)
    return search_all(searcher, list(methods or []), text, image, int(k), settings.device, settings.precision)


def summary_line(text: str, hits: dict[str, list[Hit]]) -> str:
    query = f"“{text.strip()}”" if (text or "").strip() else "the uploaded image"
    return (f"Results for {query} by {', '.join(f'**{m}**' for m in hits)}; the number under each image is "
            "its cosine with the query. Click an image to open it with its metadata.")
