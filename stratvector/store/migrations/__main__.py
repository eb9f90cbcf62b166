"""Developer helper: write a new migration from the difference between models and schema.

    python -m stratvector.store.migrations "add column x to fills"

Builds a scratch SQLite journal at the current head, compares it with
:mod:`stratvector.store.models`, and writes ``versions/NNNN_<slug>.py``. Review the
result (and check it on PostgreSQL: the store tests run every migration on both); keep
migrations self-contained, as ``0001_initial_schema.py`` is.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from stratvector.store.migrate import MIGRATIONS_DIR, alembic_config, lock_schema, upgrade_to_head


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print(__doc__, file=sys.stderr)
        return 2
    message = argv[0].strip()
    numbers = [
        int(p.name[:4]) for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    ]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            lock_schema(conn)
            upgrade_to_head(conn)
        engine.dispose()
        command.revision(alembic_config(url=url), message=message, autogenerate=True, rev_id=rev_id)
        print(f"wrote revision {rev_id}; review it before committing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
