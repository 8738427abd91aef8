"""Arrow types in and out of Delta: what Delta cannot hold is stored as its nearest Delta type,
and the Arrow type it came from rides along as field metadata, so readers get it back.

Delta has no fixed-size lists (embeddings), second-precision timestamps, unsigned or large
types; ``fixed_size_list<float, 512>`` is stored as ``list<float>`` with its Arrow type in the
field's metadata (delta-rs keeps field metadata in the table schema), and cast back on read.
"""

from __future__ import annotations

import base64

import pyarrow as pa
import pyarrow.compute as pc

ARROW_TYPE = "crawl2diffusion.arrow_type"
"""Field metadata key: the field's Arrow type (an IPC-serialized one-field schema, base64)."""

_UNSIGNED = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64()}


def delta_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Delta stores ``t`` as (``t`` itself where Delta has it)."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", t.tz)
    if any(
        check(t)
        for check in (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    ):
        return pa.list_(delta_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(delta_type(f.type)) for f in t.fields])
    if pa.types.is_map(t):
        return pa.map_(delta_type(t.key_type), delta_type(t.item_type))
    if pa.types.is_dictionary(t):
        return delta_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_uint64(t):
        return pa.int64()
    return _UNSIGNED.get(t, t)


def to_delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with Delta's types; each changed field remembers its Arrow type."""
    fields = []
    for f in schema:
        stored = delta_type(f.type)
        if stored == f.type:
            fields.append(f)
            continue
        original = base64.b64encode(pa.schema([f.remove_metadata()]).serialize().to_pybytes())
        metadata = {**(f.metadata or {}), ARROW_TYPE.encode(): original}
        fields.append(f.with_type(stored).with_metadata(metadata))
    return pa.schema(fields)


def _original(f: pa.Field) -> pa.Field | None:
    encoded = (f.metadata or {}).get(ARROW_TYPE.encode())
    if encoded is None:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded))).field(0)


def restore(table: pa.Table) -> pa.Table:
    """``table`` (as read from Delta) with each remembered Arrow type cast back."""
    originals = [_original(f) for f in table.schema]
    if not any(originals):
        return table
    columns, fields = [], []
    for f, original, column in zip(table.schema, originals, table.columns, strict=True):
        if original is None:
            columns.append(column)
            fields.append(f)
            continue
        wanted = original.with_nullable(f.nullable)
        try:
            columns.append(column.cast(wanted.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # a fixed-size list whose width changed (another embedding model) keeps its own
            wanted = wanted.with_type(_uniform_width(column, wanted.type) or f.type)
            columns.append(column.cast(wanted.type))
        fields.append(wanted)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def annotations(schema: pa.Schema) -> dict[str, bytes | None]:
    """Field name -> its remembered Arrow type annotation (None where the type is Delta's)."""
    return {f.name: (f.metadata or {}).get(ARROW_TYPE.encode()) for f in schema}


def _uniform_width(column: pa.ChunkedArray, wanted: pa.DataType) -> pa.DataType | None:
    """``wanted`` (a fixed-size list) at the one width all of ``column``'s lists have."""
    if not pa.types.is_fixed_size_list(wanted):
        return None
    widths = pc.unique(pc.list_value_length(column).drop_null()).to_pylist()
    return pa.list_(wanted.value_field, widths[0]) if len(widths) == 1 else None
