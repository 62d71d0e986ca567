"""Retrieval benchmark: ingestion throughput and search latency of agent.retrieval.

Generates a deterministic synthetic corpus (pseudo-words from a fixed-seed, Zipf-distributed
vocabulary; .txt / .md / .html files) in a temporary directory, ingests it through the real pipeline
(extract_text -> chunk_text(auto) -> SearchIndex.add_file) and runs search queries.

    .venv/bin/python bench/retrieval_bench.py                 # 50 MB, 200 queries, lexical
    .venv/bin/python bench/retrieval_bench.py --mb 5 --hybrid # with a hashing embedder
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.retrieval import SearchIndex, chunk_text, extract_text  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "sho", "vin", "pel", "dra", "gu", "xe", "tri", "el"]


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def make_corpus(root: Path, total_mb: float, n_files: int, seed: int) -> tuple[list[Path], list[str]]:
    rng = random.Random(seed)
    vocab = make_vocabulary(rng, 30000)
    rng.shuffle(vocab)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))  # Zipf
    per_file = int(total_mb * 1024 * 1024 / n_files)
    paths = []
    for i in range(n_files):
        ext = ("txt", "txt", "txt", "md", "html")[i % 5]
        parts: list[str] = []
        size = 0
        while size < per_file:
            words = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(40, 160))
            para = " ".join(words).capitalize() + "."
            parts.append(f"<p>{para}</p>" if ext == "html" else para)
            size += len(para) + 2
        body = "\n\n".join(parts)
        if ext == "html":
            body = f"<html><head><title>doc {i}</title><style>p{{}}</style></head><body>{body}</body></html>"
        elif ext == "md":
            body = f"# Document {i}\n\n{body}"
        path = root / f"doc{i:04d}.{ext}"
        path.write_text(body, encoding="utf-8")
        paths.append(path)
    return paths, vocab


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder (stands in for a real model in the benchmark)."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in text.lower().split():
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
            vec[h % self.dim] += 1.0 if h & 0x80000000 else -1.0
        return vec


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[k]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths, vocab = make_corpus(root, args.mb, args.files, args.seed)
        total_bytes = sum(p.stat().st_size for p in paths)
        gen_s = time.perf_counter() - t0
        print(f"corpus: {len(paths)} files, {total_bytes / 1e6:.1f} MB, generated in {gen_s:.1f}s")

        embedder = HashingEmbedder() if args.hybrid else None
        index = SearchIndex(root / "index" / "search.db", embedder)
        await index.open()
        sem = asyncio.Semaphore(2)
        n_chunks = 0
        usage = 0

        def prepare(path: Path) -> list:
            return chunk_text(extract_text(path.read_bytes(), path.name))

        async def ingest(i: int, path: Path) -> None:
            nonlocal n_chunks, usage
            async with sem:
                chunks = await asyncio.to_thread(prepare, path)
                attrs = {"n": i, "kind": path.suffix[1:], "even": i % 2 == 0}
                added = await index.add_file("vs_bench", f"file-{i}", path.name, chunks, attrs)
                usage += added
                n_chunks += len(chunks)

        t0 = time.perf_counter()
        await asyncio.gather(*(ingest(i, p) for i, p in enumerate(paths)))
        ingest_s = time.perf_counter() - t0
        db_mb = sum(f.stat().st_size for f in (root / "index").iterdir()) / 1e6
        print(
            f"ingest: {ingest_s:.1f}s, {total_bytes / 1e6 / ingest_s:.2f} MB/s, {n_chunks} chunks "
            f"(auto 800/400), usage_bytes {usage / 1e6:.1f} MB, db+wal {db_mb:.1f} MB"
        )

        rng = random.Random(args.seed + 1)
        queries: list[tuple[str, dict | None]] = []
        for q in range(args.queries):
            k = rng.randint(1, 5)
            # Mix of frequent (head of the Zipf list) and rare words; every 4th query filtered.
            words = [vocab[min(int(rng.paretovariate(0.6)) - 1, len(vocab) - 1)] for _ in range(k)]
            words += [rng.choice(vocab)]
            flt = {"type": "eq", "key": "even", "value": True} if q % 4 == 3 else None
            queries.append((" ".join(words) + "?", flt))
        latencies = []
        returned = 0
        for text, flt in queries:
            t = time.perf_counter()
            hits = await index.search(["vs_bench"], text, filters=flt, max_num_results=10)
            latencies.append((time.perf_counter() - t) * 1000)
            returned += len(hits)
        await index.close()
        print(
            f"search: {len(queries)} queries ({'hybrid' if args.hybrid else 'lexical'}), "
            f"p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
            f"max {max(latencies):.1f} ms, mean hits {returned / len(queries):.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB (default 50)")
    parser.add_argument("--files", type=int, default=100, help="number of files (default 100)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--hybrid", action="store_true", help="index with a hashing embedder (slow, pure Python)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
