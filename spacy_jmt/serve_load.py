"""A load check of `spacy-jmt serve`: start the server on a pipeline, run concurrent clients
against it on loopback for a bounded time, and report what they saw.

    python -m spacy_jmt.serve_load PIPELINE --clients 8 --seconds 30

Each client posts one text at a time to `POST /annotate`: a short text (one sentence) or,
with probability `--long-share`, a long one (sentences joined to `--long-chars`
characters). Printed: requests per second, p50 and p99 latency per kind of text, the
errors, and the server's resident memory (RSS) once the pipeline is loaded, halfway and
at the end (a plateau after the first seconds is the threads' allocators warming up; a
steady climb would be a leak).
`--unique-words` adds a word never seen before to each text, as real traffic does, so that
the growth of the vocab shows in the RSS. A check to run by hand, not a timed test.
"""

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import httpx

SENTENCES = [
    "The committee approved the new budget on Tuesday after a long debate.",
    "Maria Gonzalez moved from Madrid to Toronto to work for a small software company.",
    "Heavy rain flooded several streets in the old town overnight.",
    "The museum will reopen in March with an exhibition of early photographs.",
    "He asked whether the train to Boston had already left.",
    "Researchers at the university measured the speed of the glacier for ten years.",
    "She bought two tickets, but her brother never showed up.",
    "The company reported a loss of 3 million dollars in the second quarter.",
    "After the storm, volunteers cleared the fallen trees from the park.",
    "Our neighbours keep bees and sell the honey at the Saturday market.",
    "The minister said the talks with Paris would continue next week.",
    "A small boat carrying four fishermen was found near the coast.",
    "Prices for apartments in the city centre rose again this year.",
    "The orchestra played Beethoven's fifth symphony without a conductor.",
    "Could you send me the report before the meeting starts?",
    "Dr. Okafor, who leads the clinic in Lagos, trained nurses from three countries.",
]
KINDS = ("short", "long")


def make_texts(kind: str, long_chars: int, rng: random.Random, n: int = 32) -> List[str]:
    """A pool of texts of one kind: single sentences, or sentences joined to `long_chars`.

    kind (str): "short" or "long".
    long_chars (int): The length of a long text, in characters (at least).
    rng (random.Random): The source of the order.
    n (int): Texts in the pool.
    RETURNS (List[str]): The texts.
    """
    if kind == "short":
        return [rng.choice(SENTENCES) for _ in range(n)]
    texts = []
    for _ in range(n):
        parts: List[str] = []
        while sum(len(p) + 1 for p in parts) < long_chars:
            parts.append(rng.choice(SENTENCES))
        texts.append(" ".join(parts))
    return texts


def percentile(values: List[float], q: float) -> Optional[float]:
    """RETURNS (Optional[float]): The q-th percentile (nearest rank), None if no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mb(pid: int) -> Optional[float]:
    """RETURNS (Optional[float]): The resident memory of a process in MB (Linux /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(pipeline: str, port: int, server_args: List[str], timeout: float) -> Any:
    """Start `python -m spacy_jmt serve` and wait until it answers /health.

    RETURNS (subprocess.Popen): The server process.
    RAISES (RuntimeError): If it exits or does not answer within `timeout` seconds.
    """
    command = [
        sys.executable,
        "-m",
        "spacy_jmt",
        "serve",
        pipeline,
        "--port",
        str(port),
        "--log-level",
        "warning",
        *server_args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.communicate()[0]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


def run_clients(
    url: str,
    pools: Dict[str, List[str]],
    clients: int,
    seconds: float,
    long_share: float,
    unique_words: bool,
    seed: int = 0,
    on_halfway: Optional[Any] = None,
) -> Dict[str, Any]:
    """Run `clients` threads that post texts one at a time until `seconds` have passed
    (a request under way at the end is waited for and counted); `on_halfway()` is called
    when half the time has passed.

    RETURNS (Dict[str, Any]): "latencies" (kind -> seconds per request), "errors" (kind ->
        count), "messages" (the first few errors) and "seconds" (the wall time).
    """
    latencies: Dict[str, List[float]] = {kind: [] for kind in KINDS}
    errors = {kind: 0 for kind in KINDS}
    messages: List[str] = []
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        with httpx.Client(base_url=url, timeout=300) as http:
            n = 0
            while time.monotonic() < deadline:
                kind = "long" if rng.random() < long_share else "short"
                text = rng.choice(pools[kind])
                if unique_words:
                    text = f"{text} Zq{k}x{n}{rng.randrange(10**9)}"
                n += 1
                began = time.monotonic()
                try:
                    response = http.post("/annotate", json={"text": text})
                    ok = response.status_code == 200 and len(response.json()["docs"]) == 1
                    problem = "" if ok else f"{response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as err:
                    problem = f"{type(err).__name__}: {err}"
                took = time.monotonic() - began
                with lock:
                    if problem:
                        errors[kind] += 1
                        if len(messages) < 5:
                            messages.append(problem)
                    else:
                        latencies[kind].append(took)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    if on_halfway is not None:
        time.sleep(seconds / 2)
        on_halfway()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    return {"latencies": latencies, "errors": errors, "messages": messages, "seconds": wall}


def report(result: Dict[str, Any], rss: List[Optional[float]]) -> str:
    """RETURNS (str): A markdown table of the requests per kind, and the server's RSS (MB:
    loaded, halfway, at the end)."""
    seconds = result["seconds"]
    lines = [
        "| texts | requests | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = 0
    for kind in KINDS:
        values = result["latencies"][kind]
        total += len(values)
        p50, p99 = percentile(values, 50), percentile(values, 99)
        shown = [f"{1000 * p:.0f}" if p is not None else "-" for p in (p50, p99)]
        lines.append(
            f"| {kind} | {len(values)} | {len(values) / seconds:.1f} | {shown[0]} | "
            f"{shown[1]} | {result['errors'][kind]} |"
        )
    n_errors = sum(result["errors"].values())
    lines.append(f"| all | {total} | {total / seconds:.1f} | | | {n_errors} |")
    memory = " -> ".join(f"{v:.0f} MB" if v is not None else "n/a" for v in rss)
    lines.append(f"\nServer RSS: {memory} (loaded, halfway, after {seconds:.0f} s of load)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the arguments, start the server, run the clients, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", help="A pipeline directory or installed package.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients.")
    parser.add_argument("--seconds", type=float, default=30.0, help="How long the load runs.")
    parser.add_argument("--long-chars", type=int, default=5000, help="Length of a long text.")
    parser.add_argument("--long-share", type=float, default=0.2, help="Share of long texts.")
    parser.add_argument("--unique-words", action="store_true", help="A new word per text.")
    parser.add_argument("--workers", type=int, default=4, help="The server's worker threads.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per request.")
    parser.add_argument("--port", type=int, default=0, help="The port (0: a free one).")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="Seconds to load.")
    parser.add_argument("--output-json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or not 0 <= args.long_share <= 1:
        parser.error("--clients >= 1, --seconds > 0 and 0 <= --long-share <= 1, please")
    port = args.port or _free_port()
    max_chars = max(100_000, args.long_chars + 1000)
    server_args = ["--workers", str(args.workers), "--threads", str(args.threads),
                   "--max-chars", str(max_chars)]  # fmt: skip
    rng = random.Random(0)
    pools = {kind: make_texts(kind, args.long_chars, rng) for kind in KINDS}
    proc = start_server(args.pipeline, port, server_args, args.startup_timeout)
    try:
        rss = [rss_mb(proc.pid)]
        url = f"http://127.0.0.1:{port}"
        print(
            f"Server up (pid {proc.pid}); {args.clients} clients for {args.seconds:.0f} s, "
            f"{args.long_share:.0%} long texts of {args.long_chars} characters",
            flush=True,
        )
        result = run_clients(
            url, pools, args.clients, args.seconds, args.long_share, args.unique_words,
            on_halfway=lambda: rss.append(rss_mb(proc.pid)),
        )  # fmt: skip
        rss.append(rss_mb(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(report(result, rss))
    for message in result["messages"]:
        print(f"error: {message}")
    if args.output_json is not None:
        data = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "rss_mb": rss,
            **{k: v for k, v in result.items()},
        }
        args.output_json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()
