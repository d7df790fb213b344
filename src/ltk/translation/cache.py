"""A content-addressed, kill-safe translation cache in SQLite, shared by every engine and rank.

Each writer (one per process/rank) owns ``translations-<writer>.sqlite`` and reads every file of the
folder, so ranks never contend for a lock and a shared folder works across nodes. Rows are committed per
batch in one transaction: SQLite's journal makes a SIGKILL lose only the uncommitted batch, and the primary
key makes a retried batch a no-op (nothing duplicated).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path


class TranslationCache:
    """Content-addressed translations in SQLite files under one folder (see the module docstring)."""

    def __init__(self, folder: Path, writer: str = "main"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"translations-{writer}.sqlite"
        self.conn = sqlite3.connect(self.path, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against process kills
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, model TEXT, src TEXT, tgt TEXT,"
            " source TEXT, output TEXT, ids TEXT) WITHOUT ROWID"
        )
        self.conn.commit()
        self._readers: dict[Path, sqlite3.Connection] = {}

    @staticmethod
    def key(model_key: str, src: str, tgt: str, settings_key: str, text: str) -> str:
        payload = json.dumps([model_key, src, tgt, settings_key, text], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _connections(self) -> list[sqlite3.Connection]:
        for path in sorted(self.folder.glob("translations-*.sqlite")):
            if path != self.path and path not in self._readers:
                self._readers[path] = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        return [self.conn, *self._readers.values()]

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[str, list[int]]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[str, list[int]]] = {}
        for conn in self._connections():
            missing = [k for k in wanted if k not in found]
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, output, ids FROM translations WHERE key IN ({marks})"
                for key, output, ids in conn.execute(query, chunk):
                    found[key] = (output, json.loads(ids))
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, str, str, str, list[int]]]) -> None:
        """Rows of (key, model, src, tgt, source text, output text, output ids), in one transaction."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*r[:6], json.dumps(r[6])) for r in rows],
            )

    def count(self) -> int:
        return sum(c.execute("SELECT COUNT(*) FROM translations").fetchone()[0] for c in self._connections())

    def close(self) -> None:
        for conn in [self.conn, *self._readers.values()]:
            conn.close()
        self._readers.clear()
