#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: exact and repeatable where
times are not.

Each server variant of `bench-server` runs under callgrind on one thread. For each
workload a client on one keep-alive connection sends 300 warm-up requests, the counters
are zeroed (`callgrind_control -z`), 2,000 more requests go, and the counters are dumped
(`callgrind_control -d`): the dump's total over 2,000 is the server's user-space
instructions per request. A session variant's cost is that minus the same framework's
bare server, measured the same way.

    python3 bench/count.py                      # ours and the peers: the BENCHMARKS.md table
    python3 bench/count.py --ours               # our variants only
    python3 bench/count.py --ours --check bench/instruction-budgets.txt
                                                # fail when a count passes its budget by >10 %
    AEROSPIKE_HOSTS=127.0.0.1:3000 python3 bench/count.py --variants axum-ours-aerospike
                                                # any variants of bench-server
    python3 bench/count.py --variants axum-floor,actix-floor,axum-ours,actix-ours
                                                # the floor: a layer with no session behind
                                                # it (see bench-server's `floor` module)
    python3 bench/count.py --variants axum-bare,actix-bare --cookie id=o4ri6i5CpSLnF7m11Ps83Q
                                                # what the `Cookie` header alone costs each
                                                # framework, with no layer at all

The client keeps cookies as a browser would (the last `Set-Cookie` of each name wins).
Workloads: `GET /` (read the counter, add 1, write it), `GET /read`, `GET /plain` (the
cookie is sent, the session not used), and `new` (`GET /` with no cookie: a new session
per request). Needs valgrind and a release build of bench-server:
`cargo build --release -p session-bench --bin bench-server`.
"""

import argparse
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

WARMUP = 300
REQUESTS = 2000
WORKLOADS = [("get", "/", True), ("read", "/read", True), ("plain", "/plain", True),
             ("new", "/", False)]
LABELS = {"get": "`GET /` read, +1, write", "read": "`GET /read`",
          "plain": "`GET /plain` (cookie sent, session unused)",
          "new": "new session each request"}
OURS = ["axum-ours", "actix-ours"]
PEERS = ["axum-tower-sessions", "actix-session-cookie"]
BARE = {"axum": "axum-bare", "actix": "actix-bare"}
MARGIN = 0.10


class Client:
    """One keep-alive HTTP/1.1 connection with a cookie jar."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.jar = {}

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return body

    def get(self, path, send_cookies):
        cookie = ""
        if send_cookies and self.jar:
            cookie = "cookie: " + "; ".join(f"{k}={v}" for k, v in self.jar.items()) + "\r\n"
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{cookie}\r\n".encode())
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie" and send_cookies:
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                if v:
                    self.jar[k] = v
                else:
                    self.jar.pop(k, None)
        body = self._read_exact(length)
        if status != 200:
            raise RuntimeError(f"{path}: status {status}: {body!r}")
        return body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_dump(directory):
    """The total of the newest callgrind dump in `directory`."""
    newest = newest_dump(directory)
    with open(newest) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no total in {newest}")


def newest_dump(directory):
    dumps = [p for p in glob.glob(os.path.join(directory, "cg.out.*"))
             if re.search(r"\.\d+$", p)]
    return max(dumps, key=lambda p: int(p.rsplit(".", 1)[1]))


def measure(server, variant, keep=None, cookie=None):
    """Instructions per request of each workload on `variant`; with `keep`, each
    workload's callgrind dump is copied there as `VARIANT-WORKLOAD.out`, for
    `callgrind_annotate`; with `cookie` (`NAME=VALUE`), the client's jar starts with
    it, as if a layer had set it."""
    directory = tempfile.mkdtemp(prefix="count-")
    port = free_port()
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--vgdb=yes",
         f"--callgrind-out-file={directory}/cg.out",
         server, variant, "--addr", f"127.0.0.1:{port}", "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{variant} did not start")
                time.sleep(0.2)
        counts = {}
        for name, path, with_cookie in WORKLOADS:
            client = Client(port)
            if cookie:
                cookie_name, _, cookie_value = cookie.partition("=")
                client.jar[cookie_name] = cookie_value
            if with_cookie:
                client.get("/", True)  # the session the workload then uses
            for _ in range(WARMUP):
                client.get(path, with_cookie)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(REQUESTS):
                client.get(path, with_cookie)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            counts[name] = last_dump(directory) / REQUESTS
            if keep:
                shutil.copy(newest_dump(directory), os.path.join(keep, f"{variant}-{name}.out"))
            client.sock.close()
        return counts
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def read_budgets(path):
    """`variant workload instructions` lines; `#` starts a comment."""
    budgets = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                budgets[(line[0], line[1])] = int(line[2])
    return budgets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", action="store_true", help="our variants only")
    parser.add_argument("--check", metavar="BUDGETS",
                        help="fail when a count passes its budget by more than 10 %%")
    parser.add_argument("--variants", metavar="A,B",
                        help="these variants instead (e.g. axum-ours-aerospike with "
                             "AEROSPIKE_HOSTS set, or axum-tower-sessions-redis)")
    parser.add_argument("--keep", metavar="DIR",
                        help="copy each workload's callgrind dump into DIR, as "
                             "VARIANT-WORKLOAD.out, for callgrind_annotate")
    parser.add_argument("--cookie", metavar="NAME=VALUE",
                        help="send this cookie from the first request on, in every "
                             "variant, the bare servers included (which never set one)")
    parser.add_argument("--server", help="the bench-server binary (default: the release "
                        "build in cargo's target directory)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("count.py: valgrind is missing (apt-get install valgrind)")
    if not args.server:
        # Honours CARGO_TARGET_DIR and the workspace's own settings.
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              check=True, capture_output=True, text=True).stdout
        target = json.loads(meta)["target_directory"]
        args.server = os.path.join(target, "release", "bench-server")
    if not os.access(args.server, os.X_OK):
        sys.exit(f"count.py: no {args.server}: "
                 "cargo build --release -p session-bench --bin bench-server")
    variants = OURS + ([] if args.ours else PEERS)
    if args.variants:
        variants = args.variants.split(",")
    frameworks = sorted({v.split("-", 1)[0] for v in variants})
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    results = {}
    for variant in dict.fromkeys([BARE[f] for f in frameworks] + variants):
        started = time.time()
        results[variant] = measure(args.server, variant, args.keep, args.cookie)
        shown = ", ".join(f"{w} {c:,.0f}" for w, c in results[variant].items())
        print(f"{variant}: {shown} ({time.time() - started:.0f} s)", file=sys.stderr)

    def over_bare(variant, workload):
        bare = results[BARE[variant.split("-", 1)[0]]][workload]
        return results[variant][workload] - bare

    print("| workload | " + " | ".join(variants) + " |")
    print("|---|" + "--:|" * len(variants))
    for name, _, _ in WORKLOADS:
        cells = " | ".join(f"{over_bare(v, name):+,.0f}" for v in variants)
        print(f"| {LABELS[name]} | {cells} |")
    bare = ", ".join(f"{f} {results[BARE[f]]['plain']:,.0f}" for f in frameworks)
    print(f"\nBare servers, `GET /plain`: {bare} instructions per request.")

    if args.check:
        failed = False
        for (variant, workload), budget in sorted(read_budgets(args.check).items()):
            if variant not in results:
                continue
            count = over_bare(variant, workload)
            limit = budget * (1 + MARGIN)
            verdict = "ok" if count <= limit else "OVER BUDGET"
            failed |= count > limit
            print(f"{variant} {workload}: {count:+,.0f} over bare, budget {budget:+,} "
                  f"(+10 % = {limit:,.0f}): {verdict}")
        if failed:
            sys.exit("count.py: a workload passed its instruction budget")


if __name__ == "__main__":
    main()
