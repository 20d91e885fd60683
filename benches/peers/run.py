#!/usr/bin/env python3
"""threadline side by side with DuckDB and chDB (embedded ClickHouse), like ClickBench.

One command, on one machine, in one run:

    python3 benches/peers/run.py --mb 250

1. builds threadline and the checkout simulator (release) and writes ~MB of simulated checkout
   traffic in its real formats (OTLP/JSON and Zipkin spans; JSON, ECS, logfmt, text logs);
2. threadline: `threadline ingest` of the raw files, timed end to end (decode + index + commit),
   with the child's peak RSS (and the peaks of its anonymous and file-mapped parts); index size
   on disk;
3. flattens the records threadline decoded (read back through its search API, so every engine
   holds exactly the same records) to NDJSON: one row per span or log with its attributes as a
   JSON column. The flattening is not counted for anyone;
4. loads that NDJSON into DuckDB (a table in a database file) and into chDB (a MergeTree table
   ordered by trace_id), timed, and measures their sizes on disk;
5. asks each engine the same five questions, checks that the answers agree, and prints one
   Markdown table (ingest MB/s of the raw input, size ÷ input, p50 of each question).

Each engine loads `--loads` times (5 by default), in rounds (threadline, DuckDB, chDB, then
again), and the table shows each engine's median load: a single load moves by a third from one
minute to the next on a shared machine, and so would the ratio between engines.

DuckDB and chDB come from PyPI into a virtual environment under target/peers-venv (created on
first use). Not part of CI: it needs the network for PyPI and a few minutes of the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "peers-venv"
REQUIREMENTS = ["duckdb>=1.1", "chdb>=2.0"]

DECLINE_Q = "kind = span AND exists(decline_code)"
HISTOGRAM_Q = "kind = span AND name = stripe_api_call AND status = ERROR"
ERRORS_Q = "kind = span AND status = ERROR"
TEXT_Q = "kind = log AND declined"
TEN_MINUTES_NS = 600 * 10**9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=250.0, help="input size to simulate (MB)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/threadline-peers"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--traces", type=int, default=40, help="trace ids looked up")
    ap.add_argument("--reps", type=int, default=20, help="repetitions of each aggregation")
    ap.add_argument("--loads", type=int, default=5,
                    help="loads per engine, in rounds; the table shows the median")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()

    ensure_venv()
    if not args.skip_build:
        run(["cargo", "build", "--release", "--locked", "-p", "cli", "-p", "checkout-sim"], cwd=ROOT)
    release = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    threadline, sim = release / "threadline", release / "checkout-sim"

    work = args.dir
    shutil.rmtree(work, ignore_errors=True)
    traffic, index = work / "traffic", work / "index"
    work.mkdir(parents=True)
    print(f"== simulating ~{args.mb:g} MB of checkout traffic into {traffic}", flush=True)
    run([str(sim), "--out", str(traffic), "--seed", str(args.seed), "--target-mb", str(args.mb)])
    # The ground truth is the simulator's, not input.
    for truth in traffic.rglob("ground_truth.json"):
        truth.rename(work / "ground_truth.json")
    input_bytes = dir_bytes(traffic)

    print("== threadline ingest", flush=True)
    tl_runs = [threadline_ingest(threadline, traffic, index)]
    summary = tl_runs[0].summary
    tl_size = dir_bytes(index)

    server = subprocess.Popen(
        [str(threadline), "--index", str(index), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = wait_for_port(server)
        tl = ThreadlineHttp(port)
        print("== flattening the decoded records to NDJSON (not timed)", flush=True)
        flat = work / "records.ndjson"
        n_rows = flatten(tl, flat)
        if n_rows != summary["records"]:
            print(f"warning: {n_rows} rows read back, ingest counted {summary['records']}")
        trace_ids = sample_trace_ids(flat, args.traces, args.seed)

        sys.path.insert(0, str(site_packages()))
        import chdb.session  # noqa: E402  (from the venv)
        import duckdb  # noqa: E402

        duck_runs: list[float] = []
        ch_runs: list[float] = []
        duck_cpu: list[float] = []
        ch_cpu: list[float] = []
        duck = duck_path = None
        ch = chdb.session.Session(str(work / "chdb"))
        for round_ in range(max(args.loads, 1)):
            if round_ > 0:
                print(f"== threadline ingest ({round_ + 1} of {args.loads})", flush=True)
                again = work / f"index-{round_}"
                tl_runs.append(threadline_ingest(threadline, traffic, again))
                shutil.rmtree(again)
            print(f"== DuckDB load ({round_ + 1} of {args.loads})", flush=True)
            if round_ > 0:
                duck.close()
                duck_path.unlink()
            duck_path = work / f"duck-{round_}.db"
            duck = duckdb.connect(str(duck_path))
            cpu = own_cpu_seconds()
            started = time.perf_counter()
            duck.execute(
                f"""CREATE TABLE records AS SELECT * FROM read_json('{flat}',
                    format = 'newline_delimited', columns = {DUCK_COLUMNS})"""
            )
            duck.execute("CHECKPOINT")
            duck_runs.append(time.perf_counter() - started)
            duck_cpu.append(own_cpu_seconds() - cpu)
            duck_size = duck_path.stat().st_size

            print(f"== chDB load ({round_ + 1} of {args.loads})", flush=True)
            ch.query("DROP DATABASE IF EXISTS bench SYNC")
            ch.query("CREATE DATABASE bench")
            ch.query(f"CREATE TABLE bench.records ({CH_COLUMNS}) ENGINE = MergeTree ORDER BY trace_id")
            cpu = own_cpu_seconds()
            started = time.perf_counter()
            ch.query(f"INSERT INTO bench.records SELECT * FROM file('{flat}', JSONEachRow, '{CH_COLUMNS}')")
            ch.query("OPTIMIZE TABLE bench.records FINAL")
            ch_runs.append(time.perf_counter() - started)
            ch_cpu.append(own_cpu_seconds() - cpu)
        ch_path = work / "chdb"
        ch_size = dir_bytes(ch_path / "store") if (ch_path / "store").exists() else dir_bytes(ch_path)

        engines = {
            "threadline (`ingest`, then HTTP)": ThreadlineAsk(tl),
            "DuckDB": SqlAsk(lambda sql, params: duck.execute(sql, params).fetchall(), "duckdb"),
            "chDB (embedded ClickHouse), ORDER BY trace_id": SqlAsk(lambda sql, params: ch_rows(ch, sql, params), "chdb"),
        }
        loads = {
            "threadline (`ingest`, then HTTP)": (
                [run.seconds for run in tl_runs], [run.cpu_seconds for run in tl_runs], tl_size
            ),
            "DuckDB": (duck_runs, duck_cpu, duck_size),
            "chDB (embedded ClickHouse), ORDER BY trace_id": (ch_runs, ch_cpu, ch_size),
        }
        print("== the five questions", flush=True)
        answers, timings = {}, {}
        for name, ask in engines.items():
            answers[name], timings[name] = ask_all(ask, trace_ids, args.reps)
        check_agreement(answers)
    finally:
        server.terminate()
        server.wait(timeout=60)

    mb = input_bytes / 1e6
    peak = max(tl_runs, key=lambda run: run.rss_kib)
    print()
    print(f"{mb:.0f} MB of input ({summary['records']:,} records: {summary['spans']:,} spans, "
          f"{summary['logs']:,} logs) in {summary['files']} files; threadline ingest peak RSS "
          f"{peak.rss_kib / 1024:.0f} MiB (anonymous {peak.anon_kib / 1024:.0f} MiB, mapped "
          f"{peak.file_kib / 1024:.0f} MiB; the highest of its {len(tl_runs)} loads). Peers load "
          f"the same records as flat NDJSON ({dir_bytes(flat) / 1e6:.0f} MB; flattening not "
          f"counted). Ingest is each engine's median load; every load, in MB/s:")
    for name, (runs, _, _) in loads.items():
        print(f"- {name}: " + ", ".join(f"{mb / seconds:.1f}" for seconds in runs))
    print("CPU seconds of each load (user + system; DuckDB and chDB run in this process, so theirs "
          "is this process's over the load, all its threads):")
    for name, (_, cpus, _) in loads.items():
        print(f"- {name}: " + ", ".join(f"{cpu:.2f}" for cpu in cpus))
    print()
    print("| | ingest | ingest CPU | index size / input | trace lookup | filter + group | 10-min histogram | errors by service | text search |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in engines:
        runs, cpus, size = loads[name]
        t = timings[name]
        print(f"| {name} | {mb / statistics.median(runs):.1f} MB/s | "
              f"{statistics.median(cpus):.2f} s | {size / input_bytes:.3f} | "
              + " | ".join(f"{t[q]:.2f} ms" for q in QUESTIONS) + " |")
    print()
    print("Every answer agreed across the three engines (counts per trace, per group, per bucket).")
    return 0


QUESTIONS = ["trace", "group", "histogram", "errors", "text"]


class IngestRun:
    def __init__(self, seconds: float, cpu_seconds: float, rss_kib: int, anon_kib: int,
                 file_kib: int, summary: dict):
        self.seconds, self.cpu_seconds = seconds, cpu_seconds
        self.rss_kib, self.anon_kib, self.file_kib = rss_kib, anon_kib, file_kib
        self.summary = summary


def own_cpu_seconds() -> float:
    """User + system CPU of this process so far, every thread counted (the embedded peers')."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threadline_ingest(threadline: Path, traffic: Path, index: Path) -> IngestRun:
    """`threadline ingest` of the raw files into a new index, timed end to end, with the
    child's peak RSS (VmHWM) and the peaks of its anonymous and file-mapped parts."""
    started = time.perf_counter()
    ingest = subprocess.Popen(
        [str(threadline), "--index", str(index), "ingest", str(traffic), "--json"],
        stdout=subprocess.PIPE,
    )
    assert ingest.stdout is not None
    memory = PeakMemory(ingest.pid)
    out = ingest.stdout.read()
    _, status, usage = os.wait4(ingest.pid, 0)
    seconds = time.perf_counter() - started
    memory.stop()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"threadline ingest failed ({code})")
    # VmHWM, sampled: wait4's ru_maxrss would count the pages the child shared with this
    # Python process between fork and exec (a gigabyte once chDB is loaded).
    return IngestRun(seconds, usage.ru_utime + usage.ru_stime, memory.hwm_kib, memory.anon_kib, memory.file_kib, json.loads(out))

DUCK_COLUMNS = (
    "{trace_id: 'VARCHAR', span_id: 'VARCHAR', parent_span_id: 'VARCHAR', kind: 'VARCHAR', "
    "service: 'VARCHAR', name: 'VARCHAR', ts: 'BIGINT', duration_ns: 'BIGINT', "
    "status: 'VARCHAR', level: 'VARCHAR', body: 'VARCHAR', attributes: 'VARCHAR'}"
)
CH_COLUMNS = (
    "trace_id String, span_id String, parent_span_id String, kind LowCardinality(String), "
    "service LowCardinality(String), name String, ts Int64, duration_ns Int64, "
    "status LowCardinality(String), level LowCardinality(String), body String, attributes String"
)


class PeakMemory:
    """Peaks of VmHWM, RssAnon and RssFile + RssShmem of a running process, sampled every 20 ms
    from /proc/PID/status on a thread until stop() (as PeakMemory in crates/cli/examples/sim_bench).
    The two peaks need not fall at the same moment; the peak of the total is VmHWM's, which the
    kernel keeps exactly. Sampled every 2 ms, this thread took 5% of a core from the process it
    measured (on 2 cores, 2.5% of its ingest rate); every 20 ms, under 1%."""

    def __init__(self, pid: int):
        import threading

        self.anon_kib = self.file_kib = self.hwm_kib = 0
        self._path = f"/proc/{pid}/status"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                with open(self._path) as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                anon = int(fields["RssAnon"].split()[0])
                file = int(fields["RssFile"].split()[0]) + int(fields.get("RssShmem", "0 kB").split()[0])
                hwm = int(fields["VmHWM"].split()[0])
            except (OSError, KeyError, ValueError):
                anon = file = hwm = 0  # gone, or a zombie without memory lines
            self.anon_kib = max(self.anon_kib, anon)
            self.file_kib = max(self.file_kib, file)
            self.hwm_kib = max(self.hwm_kib, hwm)
            self._done.wait(0.020)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class ThreadlineHttp:
    """One keep-alive connection to `threadline serve`."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        self.conn.request("GET", f"{path}?{query}" if query else path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} {params}: {response.status} {body[:300]!r}")
        return json.loads(body)


def flatten(tl: ThreadlineHttp, out: Path) -> int:
    n, cursor = 0, ""
    with out.open("w") as f:
        while True:
            page = tl.get("/api/v1/search", q="", limit=10000, cursor=cursor or None)
            for hit in page["hits"]:
                span = hit["kind"] == "span"
                row = {
                    "trace_id": hit.get("trace_id") or "",
                    "span_id": hit.get("span_id") or "",
                    "parent_span_id": hit.get("parent_span_id") or "",
                    "kind": hit["kind"],
                    "service": hit.get("service") or "",
                    "name": hit.get("name") or "",
                    "ts": rfc3339_ns(hit["start"] if span else hit["time"]),
                    "duration_ns": hit.get("duration_ns") or 0,
                    "status": (hit.get("status") or {}).get("code") or "",
                    "level": hit.get("level") or "",
                    "body": hit.get("body") or "",
                    "attributes": json.dumps(hit.get("attributes") or {}, separators=(",", ":")),
                }
                f.write(json.dumps(row, separators=(",", ":")))
                f.write("\n")
                n += 1
            cursor = page.get("cursor")
            if not cursor or not page["hits"]:
                return n


def rfc3339_ns(text: str) -> int:
    """`2026-11-20T14:00:00.123456789Z` → ns since the epoch (the API always writes UTC, `Z`)."""
    import calendar

    date, clock = text.rstrip("Z").split("T")
    whole, _, frac = clock.partition(".")
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi, s = (int(x) for x in whole.split(":"))
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return secs * 10**9 + int((frac + "000000000")[:9])


def sample_trace_ids(flat: Path, n: int, seed: int) -> list[str]:
    ids = set()
    with flat.open() as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "span" and row["trace_id"]:
                ids.add(row["trace_id"])
    return random.Random(seed).sample(sorted(ids), min(n, len(ids)))


class ThreadlineAsk:
    def __init__(self, tl: ThreadlineHttp):
        self.tl = tl

    def trace(self, trace_id: str) -> int:
        t = self.tl.get(f"/api/v1/traces/{trace_id}")
        return len(t["spans"]) + len(t["logs"])

    def group(self) -> dict:
        r = self.tl.get("/api/v1/aggregate", q=DECLINE_Q, by="decline_code", size=1000)
        return {b["key"]["decline_code"]: b["count"] for b in r["buckets"]}

    def histogram(self) -> dict:
        r = self.tl.get("/api/v1/aggregate", q=HISTOGRAM_Q, interval="10m")
        return {rfc3339_ns(b["key"]["time"]) // TEN_MINUTES_NS: b["count"] for b in r["buckets"] if b["count"]}

    def errors(self) -> dict:
        r = self.tl.get("/api/v1/aggregate", q=ERRORS_Q, by="service", size=1000)
        return {b["key"]["service"]: b["count"] for b in r["buckets"]}

    def text(self) -> int:
        return self.tl.get("/api/v1/search", q=TEXT_Q, limit=1)["total"]


class SqlAsk:
    def __init__(self, query, dialect: str):
        self.query, self.dialect = query, dialect

    def attr(self, key: str) -> str:
        if self.dialect == "duckdb":
            return f"json_extract_string(attributes, '$.\"{key}\"')"
        return f"JSONExtractString(attributes, '{key}')"

    def trace(self, trace_id: str) -> int:
        return int(self.query(f"SELECT count(*) FROM records WHERE trace_id = '{trace_id}'", None)[0][0])

    def group(self) -> dict:
        a = self.attr("decline_code")
        rows = self.query(
            f"SELECT {a} AS code, count(*) FROM records WHERE kind = 'span' AND {a} IS NOT NULL "
            f"AND {a} <> '' GROUP BY code",
            None,
        )
        return {r[0]: int(r[1]) for r in rows}

    def histogram(self) -> dict:
        rows = self.query(
            f"SELECT intDiv(ts, {TEN_MINUTES_NS}) AS b, count(*) FROM records WHERE kind = 'span' "
            "AND name = 'stripe_api_call' AND status = 'ERROR' GROUP BY b"
            if self.dialect == "chdb"
            else f"SELECT ts // {TEN_MINUTES_NS} AS b, count(*) FROM records WHERE kind = 'span' "
            "AND name = 'stripe_api_call' AND status = 'ERROR' GROUP BY b",
            None,
        )
        return {int(r[0]): int(r[1]) for r in rows}

    def errors(self) -> dict:
        rows = self.query(
            "SELECT service, count(*) FROM records WHERE kind = 'span' AND status = 'ERROR' GROUP BY service",
            None,
        )
        return {r[0]: int(r[1]) for r in rows}

    def text(self) -> int:
        # Whole-word match, as threadline's body tokens are words.
        if self.dialect == "duckdb":
            cond = "regexp_matches(lower(body), '\\bdeclined\\b')"
        else:
            cond = "match(lower(body), '\\\\bdeclined\\\\b')"
        return int(self.query(f"SELECT count(*) FROM records WHERE kind = 'log' AND {cond}", None)[0][0])


def ch_rows(session, sql: str, _params) -> list:
    sql = sql.replace("FROM records", "FROM bench.records")
    out = session.query(sql, "JSONCompact")
    return json.loads(out.bytes() if hasattr(out, "bytes") else str(out))["data"]


def ask_all(ask, trace_ids: list[str], reps: int):
    answers, timings = {}, {}
    per_trace = []
    answers["trace"] = {}
    for trace_id in trace_ids:
        ask.trace(trace_id)  # warm
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            n = ask.trace(trace_id)
            samples.append(time.perf_counter() - started)
        answers["trace"][trace_id] = n
        per_trace.append(statistics.median(samples))
    timings["trace"] = statistics.median(per_trace) * 1e3
    for q in QUESTIONS[1:]:
        fn = getattr(ask, q)
        answers[q] = fn()
        samples = []
        for _ in range(reps):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        timings[q] = statistics.median(samples) * 1e3
    return answers, timings


def check_agreement(answers: dict) -> None:
    names = list(answers)
    first = answers[names[0]]
    bad = []
    for other in names[1:]:
        for q in QUESTIONS:
            if answers[other][q] != first[q]:
                bad.append(f"{q}: {names[0]} says {short(first[q])}, {other} says {short(answers[other][q])}")
    if bad:
        raise SystemExit("the engines disagree:\n  " + "\n  ".join(bad))


def short(v) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) < 300 else text[:300] + "…"


def ensure_venv() -> None:
    stamp = VENV / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print(f"== installing {', '.join(REQUIREMENTS)} into {VENV}", flush=True)
    run([sys.executable, "-m", "venv", str(VENV)])
    run([str(VENV / "bin" / "pip"), "install", "--quiet", *REQUIREMENTS])
    stamp.write_text(wanted)


def site_packages() -> Path:
    return next((VENV / "lib").glob("python3*/site-packages"))


def wait_for_port(server: subprocess.Popen) -> int:
    deadline = time.monotonic() + 120
    assert server.stderr is not None
    for line in server.stderr:
        if line.startswith("listening on "):
            # Keep draining stderr so the server never blocks on a full pipe.
            import threading

            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return int(line.strip().rsplit(":", 1)[1].rstrip("/"))
        if time.monotonic() > deadline:
            break
    raise SystemExit("threadline serve did not start")


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(cmd: list[str], cwd: Path | None = None, capture: bool = False) -> str:
    result = subprocess.run(cmd, cwd=cwd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return result.stdout if capture else ""


if __name__ == "__main__":
    sys.exit(main())
