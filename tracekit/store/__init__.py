"""The encrypted store: creation, opening, migrations, transactions, maintenance."""

from tracekit.store.core import (
    CheckReport,
    Store,
    StoreInfo,
    create_store,
    open_store,
    read_header,
)

__all__ = [
    "CheckReport",
    "Store",
    "StoreInfo",
    "create_store",
    "open_store",
    "read_header",
]
