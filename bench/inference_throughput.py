"""Enrichment throughput: the model in-process and behind Ray Serve, side by side in one run.

    .venv/bin/python bench/inference_throughput.py [--batch-sizes 8 32] [--posts 512] [--quantize]

Posts are UMSAB English validation tweets (~30 tokens). In-process: EnrichmentModel.enrich on
batches of the given size, one after the other. Ray Serve: `python -m inference` started on free
ports with the same settings (batch size included), fed Enrich requests of that size by two
concurrent clients over gRPC, so that the next batch queues while one runs. Prints posts/s, p50 and
p99 latency per batch (per request for Serve) and the Serve / in-process ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import grpc

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, post_pb2
from inference.model import EnrichmentModel
from inference.train_sentiment import DEFAULT_DATA_DIR, read_lines
from services.common.launch import free_port, spawn, stop_pid
from services.common.settings import Settings

STARTUP_LIMIT_S = 300.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(name: str, posts: int, seconds: float, latencies: list[float]) -> float:
    rate = posts / seconds
    print(f"  {name:<12} {rate:7.1f} posts/s   p50 {1000 * statistics.median(latencies):7.0f} ms   "
          f"p99 {1000 * percentile(latencies, 0.99):7.0f} ms", flush=True)
    return rate


def in_process(model: EnrichmentModel, texts: list[str], batch_size: int) -> tuple[float, list[float]]:
    model.enrich(texts[:batch_size])  # warm-up
    latencies, started = [], time.perf_counter()
    for start in range(0, len(texts), batch_size):
        begun = time.perf_counter()
        model.enrich(texts[start : start + batch_size])
        latencies.append(time.perf_counter() - begun)
    return time.perf_counter() - started, latencies


def served(target: str, texts: list[str], batch_size: int, clients: int = 2) -> tuple[float, list[float]]:
    requests = [inference_pb2.EnrichRequest(posts=[post_pb2.Post(text=t) for t in texts[i : i + batch_size]])
                for i in range(0, len(texts), batch_size)]
    latencies: list[float] = []
    lock = threading.Lock()
    with grpc.insecure_channel(target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        stub.Enrich(requests[0], timeout=120)  # warm-up

        def client(mine: list[inference_pb2.EnrichRequest]) -> None:
            for request in mine:
                begun = time.perf_counter()
                stub.Enrich(request, timeout=120)
                with lock:
                    latencies.append(time.perf_counter() - begun)

        threads = [threading.Thread(target=client, args=(requests[i::clients],)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, latencies


def start_server(batch_size: int, quantize: bool, log_path: Path) -> tuple[int, str]:
    port = free_port()
    env = {"CIVIC_INFERENCE_PORT": str(port), "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
           "CIVIC_RAY_ADDRESS": "local", "CIVIC_INFERENCE_MAX_BATCH_SIZE": str(batch_size),
           "CIVIC_INFERENCE_QUANTIZE": str(quantize).lower()}
    process = spawn(["inference"], env, log_path)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"inference exited: {log_path.read_text(errors='replace')[-2000:]}")
        with grpc.insecure_channel(target) as channel:
            try:
                inference_pb2_grpc.InferenceServiceStub(channel).Enrich(
                    inference_pb2.EnrichRequest(posts=[post_pb2.Post(text="ready?")]), timeout=10)
                return process.pid, target
            except grpc.RpcError:
                time.sleep(1.0)
    stop_pid(process.pid)
    raise TimeoutError(f"inference not answering after {STARTUP_LIMIT_S:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--posts", type=int, default=512)
    parser.add_argument("--quantize", action="store_true", help="int8 on CPU (CIVIC_INFERENCE_QUANTIZE)")
    parser.add_argument("--skip-serve", action="store_true", help="in-process fp32 and int8 only")
    args = parser.parse_args()
    tweets = read_lines(DEFAULT_DATA_DIR / "umsab" / "english" / "val_text.txt")
    texts = [tweets[i % len(tweets)] for i in range(args.posts)]
    print(f"{len(texts)} posts, {os.cpu_count()} cores, torch threads = cores", flush=True)
    for batch_size in args.batch_sizes:
        print(f"batch size {batch_size}:", flush=True)
        rates = {}
        for quantize in (False, True):
            model = EnrichmentModel.from_settings(Settings(inference_max_batch_size=batch_size,
                                                           inference_quantize=quantize))
            name = "int8" if quantize else "fp32"
            rates[name] = report(f"in-process {name}", len(texts), *in_process(model, texts, batch_size))
            del model
        print(f"  int8 / fp32 in-process: {rates['int8'] / rates['fp32']:.2f}x", flush=True)
        if args.skip_serve:
            continue
        name = "int8" if args.quantize else "fp32"
        with tempfile.TemporaryDirectory() as folder:
            pid, target = start_server(batch_size, args.quantize, Path(folder) / "inference.log")
            try:
                serve_rate = report(f"Serve {name}", len(texts), *served(target, texts, batch_size))
            finally:
                stop_pid(pid)
        print(f"  Serve / in-process ({name}): {serve_rate / rates[name]:.2f}", flush=True)


if __name__ == "__main__":
    main()
