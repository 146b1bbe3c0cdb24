"""The catalog: one Parquet file, one row per image, one `<method>_embedding` column per method.

This module is the one definition of the schema (DESIGN.md, "Catalog"). Reading validates it
and names the first offending column or row; writing adds the file-level metadata.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clip_arena.core.errors import UserError
from clip_arena.core.version import __version__

ID, URI, CAPTION, SPLIT = "image_id", "image_uri", "caption", "split"
RESERVED = (ID, URI, CAPTION, SPLIT)
SUFFIX = "_embedding"
META_KEY = b"clip_arena"
NORM_TOLERANCE = {pa.float32(): 1e-3, pa.float16(): 5e-3}
SPLITS = ("train", "val", "test")
# Grouping columns, first found wins: images sharing a value (one product, one query) are drawn into
# the same split by `embed --split`, unless --group-by names another column.
GROUP_COLUMNS = ("group_id", "product_id", "query_id")
# A method names a column and the FAISS files beside the catalog: an identifier (ASCII letters, digits, '_').
METHOD_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
# What a column may hold once decompressed, checked in the file's footer before anything is read:
# a 168 KB zstd file holding one 1.9 GB caption took 8.3 GB of memory on main.
TEXT_BYTES_PER_ROW = 4096
VECTOR_BYTES_PER_ROW = 4 * 8192  # float32, up to 8,192 dimensions
SLACK_BYTES = 64 << 20


class CatalogError(UserError):
    """The catalog file breaks the schema; the message names the column or row."""


def embedding_column(method: str) -> str:
    return f"{method}{SUFFIX}"


def check_method_name(method: str) -> str:
    if not METHOD_NAME.fullmatch(method):
        raise CatalogError(f"Method name {method[:80]!r} is not allowed: a method name is up to 64 letters, "
                           "digits and underscores.")
    return method


@dataclass
class Catalog:
    path: Path | None
    table: pa.Table
    methods: list[str]
    meta: dict = field(default_factory=dict)  # {"version", "methods": {m: {"spec", "dim", "created_at"}}}

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def ids(self) -> list[str]:
        return self.table.column(ID).to_pylist()

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def embeddings(self, method: str) -> np.ndarray:
        """(n, d) float32 vectors of one method; zero-copy when stored as float32."""
        if method not in self.methods:
            raise CatalogError(f"The catalog has no method {method!r}; it has {', '.join(self.methods) or 'none'}.")
        return fixed_list_to_numpy(self.table.column(embedding_column(method)))

    def metadata_columns(self) -> list[str]:
        """Scalar columns other than the reserved ones: usable to break results down."""
        return [f.name for f in self.table.schema
                if f.name not in RESERVED and not f.name.endswith(SUFFIX)
                and not pa.types.is_nested(f.type)]

    def resolve_uri(self, uri: str) -> str:
        """An image_uri as a readable path or URL (relative paths are under the catalog's folder)."""
        if "://" in uri[:16] or os.path.isabs(uri):
            return uri
        return str(self.folder / uri)

    def frame(self, columns: list[str] | None = None):
        """The non-embedding columns as a pandas DataFrame."""
        keep = columns or [n for n in self.table.column_names if not n.endswith(SUFFIX)]
        return self.table.select(keep).to_pandas()

    def query_rows(self) -> tuple[np.ndarray, bool]:
        """(rows the arena draws its queries from, whether they are the test split): the test split
        when the catalog has one, else every row. The arena and the verdict's query count both ask here."""
        if SPLIT in self.table.column_names:
            column = self.table.column(SPLIT).cast(pa.string())  # dictionary-encoded columns too
            test = np.flatnonzero(pc.fill_null(pc.equal(column, "test"), False).to_numpy(zero_copy_only=False))
            if len(test):
                return test, True
        return np.arange(len(self)), False


def fixed_list_to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    chunks = column.chunks
    if not chunks:
        return np.empty((0, column.type.list_size), np.float32)
    dim = column.type.list_size
    parts = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim) for c in chunks]
    arr = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def numpy_to_fixed_list(vectors: np.ndarray, dtype: str = "float32") -> pa.FixedSizeListArray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float16 if dtype == "float16" else np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


# -- validation -------------------------------------------------------------------------------
def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _validate_ids(table: pa.Table) -> None:
    if ID not in table.column_names:
        raise CatalogError(f"The catalog has no {ID!r} column.")
    if not pa.types.is_string(table.schema.field(ID).type) and not pa.types.is_large_string(table.schema.field(ID).type):
        raise CatalogError(f"Column {ID!r} must hold strings, not {table.schema.field(ID).type}.")
    col = table.column(ID)
    empty = pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_length(pc.fill_null(col, "")), 0))
    if pc.any(empty).as_py():
        raise CatalogError(f"Row {_first_row(empty.to_numpy(zero_copy_only=False))}: {ID} is missing or empty.")
    if pc.count_distinct(col).as_py() != len(col):
        values = col.to_pylist()
        seen: dict[str, int] = {}
        for row, value in enumerate(values):
            if value in seen:
                raise CatalogError(f"Row {row}: {ID} {value!r} is a duplicate of row {seen[value]}.")
            seen[value] = row


def _validate_embedding(table: pa.Table, name: str) -> None:
    ftype = table.schema.field(name).type
    if pa.types.is_list(ftype) or pa.types.is_large_list(ftype):
        lengths = pc.list_value_length(table.column(name)).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            row = _first_row(lengths != lengths[0])
            raise CatalogError(f"Column {name!r} is ragged: row {row} has {lengths[row]} values, row 0 has {lengths[0]}.")
        raise CatalogError(f"Column {name!r} must be a fixed_size_list<float16|float32, d>, not a variable list.")
    if not pa.types.is_fixed_size_list(ftype):
        raise CatalogError(f"Column {name!r} must be a fixed_size_list<float16|float32, d>, not {ftype}.")
    if ftype.value_type not in NORM_TOLERANCE:
        raise CatalogError(f"Column {name!r} holds {ftype.value_type}; use float16 or float32.")
    col = table.column(name)
    if col.null_count:
        raise CatalogError(f"Row {_first_row(pc.is_null(col).to_numpy(zero_copy_only=False))}: {name} is missing.")
    vectors = fixed_list_to_numpy(col)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise CatalogError(f"Row {_first_row(bad)}: {name} contains NaN or infinite values.")
    norms = np.linalg.norm(vectors, axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE[ftype.value_type]
    if off.any():
        row = _first_row(off)
        raise CatalogError(f"Row {row}: {name} is not L2-normalised (norm {norms[row]:.4f}).")


def validate(table: pa.Table, meta: dict | None = None, require_embeddings: bool = True) -> list[str]:
    """Check the schema; return the methods found. Raises CatalogError naming the problem."""
    if table.num_rows == 0:
        raise CatalogError("The catalog has no rows.")
    _validate_ids(table)
    if URI not in table.column_names:
        raise CatalogError(f"The catalog has no {URI!r} column.")
    uri_type = table.schema.field(URI).type
    if not (pa.types.is_string(uri_type) or pa.types.is_large_string(uri_type)):
        raise CatalogError(f"Column {URI!r} must hold strings, not {uri_type}.")
    uris = table.column(URI)
    missing = pc.or_kleene(pc.is_null(uris), pc.equal(pc.utf8_length(pc.fill_null(uris, "")), 0))
    if pc.any(missing).as_py():
        raise CatalogError(f"Row {_first_row(missing.to_numpy(zero_copy_only=False))}: {URI} is missing or empty.")
    for optional in (CAPTION, SPLIT):
        if optional in table.column_names and not pa.types.is_string(table.schema.field(optional).type):
            raise CatalogError(f"Column {optional!r} must hold strings, not {table.schema.field(optional).type}.")
    methods = [check_method_name(n[: -len(SUFFIX)]) for n in table.column_names if n.endswith(SUFFIX)]
    if not methods and require_embeddings:
        raise CatalogError("The catalog has no <method>_embedding column.")
    for method in methods:
        _validate_embedding(table, embedding_column(method))
        declared = (meta or {}).get("methods", {}).get(method, {}).get("dim")
        dim = table.schema.field(embedding_column(method)).type.list_size
        if declared is not None and int(declared) != dim:
            raise CatalogError(f"Column {embedding_column(method)!r} has dimension {dim} but the file says {declared}.")
    return methods


# -- reading and writing ----------------------------------------------------------------------
def read_meta(schema: pa.Schema) -> dict:
    raw = (schema.metadata or {}).get(META_KEY)
    try:
        return json.loads(raw) if raw else {}
    except ValueError as err:
        raise CatalogError(f"The catalog's file metadata {META_KEY.decode()!r} is not valid JSON.") from err


def _check_sizes(metadata: pq.FileMetaData) -> None:
    """Refuse, from the footer alone, a column whose decompressed size no real catalog reaches."""
    sizes: dict[str, int] = {}
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            top = chunk.path_in_schema.split(".")[0]
            sizes[top] = sizes.get(top, 0) + max(chunk.total_uncompressed_size, 0)
    for name, size in sizes.items():
        per_row = VECTOR_BYTES_PER_ROW if name.endswith(SUFFIX) else TEXT_BYTES_PER_ROW
        if size > SLACK_BYTES + per_row * metadata.num_rows:
            raise CatalogError(f"Column {name[:80]!r} holds {size / 2**20:,.0f} MB once decompressed for "
                               f"{metadata.num_rows:,} rows, more than a catalog's column may; it was not read.")


def read_catalog(path: str | os.PathLike, check: bool = True, require_embeddings: bool = True) -> Catalog:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"Catalog file {path} does not exist.")
    try:
        _check_sizes(pq.ParquetFile(path).metadata)
        table = pq.read_table(path, memory_map=True)  # memory-mapped: no second copy in RAM
    except (pa.ArrowInvalid, OSError) as err:
        raise CatalogError(f"{path} is not a readable Parquet file: {err}.") from err
    meta = read_meta(table.schema)
    methods = validate(table, meta, require_embeddings) if check else [n[: -len(SUFFIX)] for n in table.column_names if n.endswith(SUFFIX)]
    return Catalog(path, table, methods, meta)


def build_table(columns: dict[str, list], embeddings: dict[str, np.ndarray], dtype: str = "float32") -> pa.Table:
    arrays = {name: pa.array(values) for name, values in columns.items()}
    for method, vectors in embeddings.items():
        arrays[embedding_column(method)] = numpy_to_fixed_list(vectors, dtype)
    return pa.table(arrays)


def catalog_meta(specs: dict[str, str], dims: dict[str, int], previous: dict | None = None) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    methods = dict((previous or {}).get("methods", {}))
    for method, spec in specs.items():
        methods[method] = {"spec": spec, "dim": int(dims[method]), "created_at": now}
    return {"version": __version__, "methods": methods}


def with_meta(table: pa.Table, meta: dict) -> pa.Table:
    existing = dict(table.schema.metadata or {})
    existing[META_KEY] = json.dumps(meta).encode()
    return table.replace_schema_metadata(existing)


def write_catalog(path: str | os.PathLike, table: pa.Table, meta: dict, require_embeddings: bool = True) -> Path:
    """Validate, then write atomically (a crash never leaves half a catalog)."""
    path = Path(path)
    table = with_meta(table, meta)
    validate(table, meta, require_embeddings)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=64 * 1024)
    os.replace(tmp, path)
    return path
