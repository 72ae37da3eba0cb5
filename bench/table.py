"""Turns bench/run.sh's results.tsv into one Markdown table.

Every figure is a median over rounds. Ratios and extra CPU are taken round by round
against the bare server of the same framework measured in that round, then the median is
reported, so slow drift of a shared machine cancels out. "DB CPU µs/req" is the
database's own CPU (Redis, Aerospike) per request, where run.sh knew its process;
"p99 ms" wrk's 99th percentile of request latency.
"""

import csv
import statistics
import sys
from collections import defaultdict


def main() -> None:
    path, variants, workloads = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    # (variant, workload) -> round -> (rps, cpu_us, errors, user_us, db_us, p99_ms)
    rows = defaultdict(dict)
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            requests = int(r["requests"] or 0)
            if requests == 0:
                continue
            rps = requests / float(r["seconds"])
            cpu_us = float(r["cpu_s"]) / requests * 1e6
            user_us = float(r["user_s"]) / requests * 1e6
            db = r.get("db_cpu_s") or ""
            db_us = float(db) / requests * 1e6 if db else None
            rows[(r["variant"], r["workload"])][r["round"]] = (
                rps,
                cpu_us,
                int(r["errors"]),
                user_us,
                db_us,
                float(r["p99_ms"]) if r.get("p99_ms") else None,
            )

    print(
        "| variant | workload | req/s | x bare | server CPU µs/req | + µs over bare "
        "| of which user | DB CPU µs/req | p99 ms | errors |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for variant in variants:
        bare = variant.split("-")[0] + "-bare"
        for workload in workloads:
            runs = rows.get((variant, workload))
            if not runs:
                print(f"| {variant} | {workload} | not run | | | | | | | |")
                continue
            base = rows.get((bare, workload), {})
            rps = statistics.median(v[0] for v in runs.values())
            cpu = statistics.median(v[1] for v in runs.values())
            errors = sum(v[2] for v in runs.values())
            dbs = [v[4] for v in runs.values() if v[4] is not None]
            db_s = f"{statistics.median(dbs):.1f}" if dbs else ""
            p99s = [v[5] for v in runs.values() if v[5] is not None]
            p99_s = f"{statistics.median(p99s):.2f}" if p99s else ""
            paired = [(v, base[k]) for k, v in runs.items() if k in base]
            if paired and variant != bare:
                ratio = statistics.median(v[0] / b[0] for v, b in paired)
                extra = statistics.median(v[1] - b[1] for v, b in paired)
                user = statistics.median(v[3] - b[3] for v, b in paired)
                ratio_s, extra_s, user_s = f"{ratio:.2f}x", f"{extra:+.1f}", f"{user:+.1f}"
            elif variant == bare:
                ratio_s, extra_s, user_s = "1.00x", "0", "0"
            else:
                ratio_s, extra_s, user_s = "", "", ""
            print(
                f"| {variant} | {workload} | {rps:,.0f} | {ratio_s} | {cpu:.1f} "
                f"| {extra_s} | {user_s} | {db_s} | {p99_s} | {errors} |"
            )


if __name__ == "__main__":
    main()
