#!/usr/bin/env python3
"""Reference for BenchmarkMetric (internal/experiments/registry): one metric row per
committed transaction into a WAL-mode SQLite file with synchronous=NORMAL,
using CPython's sqlite3 (the C SQLite library). Prints ns per insert.

    /usr/bin/python3 bench/registry_metric.py [N]
"""
import os, sqlite3, sys, tempfile, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
d = tempfile.mkdtemp()
con = sqlite3.connect(os.path.join(d, "r.db"), isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE metrics (run_id INTEGER, step INTEGER, epoch REAL, name TEXT, value REAL, at INTEGER)")
con.execute("CREATE INDEX metrics_run ON metrics(run_id, name, step)")
t = time.perf_counter()
for i in range(n):
    con.execute("INSERT INTO metrics VALUES (?,?,?,?,?,?)", (1, i, i / 1000, "train_loss", 0.5, int(time.time() * 1000)))
dt = time.perf_counter() - t
print(f"python sqlite3 (C): {dt / n * 1e9:.0f} ns/insert over {n}")
