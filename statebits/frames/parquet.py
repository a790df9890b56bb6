"""Parquet export and import of statebits, with value types and checksums kept.

The file contains the Arrow view of :mod:`statebits.frames.convert`: typed value
columns stay typed, mixed values are tagged JSON text, and the statebits'
own attributes (initial value, creation time, lineage, fork point, frozen
flag, collection name) travel in the schema metadata. Reading rebuilds every
statebit and recomputes its hash chain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statebits.core.errors import StoreError, ValidationError

if TYPE_CHECKING:
    from statebits.collection import StatebitsCollection

__all__ = ["write_parquet", "read_parquet"]


def write_parquet(data: Any, path: str | os.PathLike[str] | Any, **options: Any) -> None:
    """Write statebits to a Parquet file.

    Parameters
    ----------
    data : Statebit, StatebitsCollection or list of Statebit
        What to write; a collection keeps its name.
    path : str, path or binary file object
        Where to write.
    **options
        Passed to :func:`pyarrow.parquet.write_table`, for example
        ``compression="zstd"``.

    Examples
    --------
    >>> import statebits, tempfile, os
    >>> sb = statebits.Statebit("temp", 20.0)
    >>> _ = sb.transition(21.5, "sensor reading")
    >>> path = os.path.join(tempfile.mkdtemp(), "temp.parquet")
    >>> statebits.write_parquet(sb, path)
    >>> statebits.read_parquet(path)["temp"].value
    21.5
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _table_of(data)
    try:
        pq.write_table(table, path, **options)
    except OSError as exc:
        raise StoreError(f"could not write the Parquet file {path!r}: {exc}") from exc
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # pyarrow rejects unknown options (a compression codec, say) with its own errors.
        raise ValidationError(f"invalid Parquet option in {sorted(options)}: {exc}; see pyarrow.parquet.write_table") from None


def read_parquet(
    path: str | os.PathLike[str] | Any, name: str | None = None, *, allow_pickle: bool = False
) -> "StatebitsCollection":
    """Read statebits written by :func:`write_parquet` and verify every hash chain.

    Parameters
    ----------
    path : str, path or binary file object
    name : str, optional
        Name of the returned collection; defaults to the stored name, then
        to the file name without its extension.
    allow_pickle : bool, default False
        Decode values stored as pickles (objects with no JSON form). Loading
        a pickle runs code from the file: trusted files only.

    Raises
    ------
    StoreError
        When the file cannot be read.
    ValidationError
        When the file lacks history columns.
    IntegrityError
        When a checksum or from_value does not verify.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from statebits.frames._meta import META_KEY, parse_meta
    from statebits.frames.convert import collection_from_frame

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"could not read the Parquet file {path!r}: {exc}") from exc
    meta = parse_meta((table.schema.metadata or {}).get(META_KEY.encode()), allow_pickle)
    stored = meta[0] if meta is not None else None
    fallback = Path(path).stem if isinstance(path, (str, os.PathLike)) else None
    return collection_from_frame(table, name=name or stored or fallback or "collection", allow_pickle=allow_pickle)


def _table_of(data: Any) -> Any:
    from statebits.collection import StatebitsCollection
    from statebits.core.statebit import Statebit
    from statebits.frames.convert import collection_to_arrow, history_to_arrow

    if isinstance(data, Statebit):
        return history_to_arrow(data)
    if isinstance(data, StatebitsCollection):
        return collection_to_arrow(data)
    if isinstance(data, (list, tuple)) and all(isinstance(item, Statebit) for item in data):
        return collection_to_arrow(StatebitsCollection(name="collection", statebits=data))
    raise ValidationError(
        f"invalid data of type {type(data).__name__} for write_parquet: expected a Statebit, "
        "a StatebitsCollection or a list of Statebits"
    )
