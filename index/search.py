"""Catalog retrieval by image id: the neighbours of one catalog image under one method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clip_arena.core.errors import UserError
from clip_arena.index.catalog import Catalog
from clip_arena.index.vector_index import MethodIndex, load_or_build


@dataclass
class Searcher:
    """A catalog with its indices loaded once; id <-> row lookups in O(1)."""

    catalog: Catalog
    indices: dict[str, MethodIndex]
    vectors: dict[str, np.ndarray]
    rows_by_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rows_by_id = {image_id: row for row, image_id in enumerate(self.catalog.ids)}

    @classmethod
    def open(cls, catalog: Catalog, methods: list[str] | None = None) -> "Searcher":
        indices, vectors = {}, {}
        for method in methods or catalog.methods:
            vectors[method] = catalog.embeddings(method)
            indices[method], _ = load_or_build(catalog, method, vectors=vectors[method])
        return cls(catalog, indices, vectors)

    def row_of(self, image_id: str) -> int:
        try:
            return self.rows_by_id[image_id]
        except KeyError:
            # `embed --images photos/` names photos/1.jpg "1.jpg": point at the id a path spelling means.
            near = max((i for i in self.rows_by_id if image_id.replace("\\", "/").endswith("/" + i)), key=len,
                       default=None)
            hint = (f"; ids are relative to the folder embed read (--images): did you mean {near!r}?" if near else
                    ".")
            raise UserError(f"Image id {image_id!r} is not in the catalog{hint}") from None

    def neighbours(self, method: str, query_row: int, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k nearest catalog images, the query itself excluded."""
        if method not in self.indices:
            raise UserError(f"The catalog has no method {method!r}; it has {', '.join(self.indices)}.")
        query = self.vectors[method][query_row]
        scores, rows = self.indices[method].search(query, k, exclude_rows=[query_row])
        valid = rows[0] >= 0
        return rows[0][valid], scores[0][valid]

    def search_id(self, method: str, image_id: str, k: int = 4) -> list[dict]:
        rows, scores = self.neighbours(method, self.row_of(image_id), k)
        ids = self.catalog.table.column("image_id")
        return [{"image_id": ids[int(r)].as_py(), "score": float(s)} for r, s in zip(rows, scores)]
