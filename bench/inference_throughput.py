"""Enrichment throughput: the model in-process and behind Ray Serve, side by side in one run.

    .venv/bin/python bench/inference_throughput.py [--batch-sizes 8 32] [--posts 512]
        [--variants torch-fp32 torch-int8 onnx-fp32 onnx-int8] [--serve onnx-int8] [--skip-serve]

Posts are UMSAB English validation tweets (~30 tokens). In-process: EnrichmentModel.enrich on
batches of the given size, one after the other, for each variant (runtime and precision: torch fp32,
torch int8 dynamic quantization, ONNX Runtime fp32 and int8). Ray Serve: `python -m inference`
started on free ports with the same settings (batch size included) and the --serve variant, fed
Enrich requests of that size by two concurrent clients over gRPC, so that the next batch queues while
one runs. Prints posts/s, p50 and p99 latency per batch (per request for Serve), each variant's speed
relative to torch fp32, the Serve / in-process ratio, and the load average (the machine may be shared:
compare variants within one run).
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
from inference.runtime import VARIANTS
from inference.training.data import DEFAULT_DATA_DIR, read_lines
from services.common.settings import Settings
from services.devstack.launch import free_port, spawn, stop_pid

STARTUP_LIMIT_S = 300.0


def variant_settings(name: str, batch_size: int) -> Settings:
    runtime, quantize = VARIANTS[name]
    return Settings(inference_max_batch_size=batch_size, inference_runtime=runtime, inference_quantize=quantize)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(name: str, posts: int, seconds: float, latencies: list[float]) -> float:
    rate = posts / seconds
    print(f"  {name:<22} {rate:7.1f} posts/s   p50 {1000 * statistics.median(latencies):7.0f} ms   "
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


def start_server(batch_size: int, variant: str, log_path: Path) -> tuple[int, str]:
    port = free_port()
    runtime, quantize = VARIANTS[variant]
    env = {"CIVIC_INFERENCE_PORT": str(port), "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
           "CIVIC_RAY_ADDRESS": "local", "CIVIC_INFERENCE_MAX_BATCH_SIZE": str(batch_size),
           "CIVIC_INFERENCE_RUNTIME": runtime, "CIVIC_INFERENCE_QUANTIZE": str(quantize).lower()}
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
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--serve", choices=list(VARIANTS), default="onnx-int8", help="the variant behind Serve")
    parser.add_argument("--skip-serve", action="store_true", help="in-process variants only")
    args = parser.parse_args()
    tweets = read_lines(DEFAULT_DATA_DIR / "umsab" / "english" / "val_text.txt")
    texts = [tweets[i % len(tweets)] for i in range(args.posts)]
    print(f"{len(texts)} posts, {os.cpu_count()} cores, threads = cores, load average {load_average()}", flush=True)
    for variant in args.variants:  # any export into the model cache happens here, not in a timed run
        EnrichmentModel.from_settings(variant_settings(variant, 1))
    for batch_size in args.batch_sizes:
        print(f"batch size {batch_size}:", flush=True)
        rates = {}
        for variant in args.variants:
            model = EnrichmentModel.from_settings(variant_settings(variant, batch_size))
            rates[variant] = report(f"in-process {variant}", len(texts), *in_process(model, texts, batch_size))
            del model
        if "torch-fp32" in rates:
            print("  / torch-fp32: " + ", ".join(f"{name} {rate / rates['torch-fp32']:.2f}x"
                                                 for name, rate in rates.items() if name != "torch-fp32"))
        print(f"  load average {load_average()}", flush=True)
        if args.skip_serve:
            continue
        with tempfile.TemporaryDirectory() as folder:
            pid, target = start_server(batch_size, args.serve, Path(folder) / "inference.log")
            try:
                serve_rate = report(f"Serve {args.serve}", len(texts), *served(target, texts, batch_size))
            finally:
                stop_pid(pid)
        if args.serve in rates:
            print(f"  Serve / in-process ({args.serve}): {serve_rate / rates[args.serve]:.2f}", flush=True)


if __name__ == "__main__":
    main()
