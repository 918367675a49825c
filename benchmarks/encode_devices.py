"""The embedding encoder on a GPU against CPU fp32: same weights, same texts, speed and vector agreement.

    python benchmarks/encode_devices.py --beir ../shared/data/retrieval/cranfield --json

Runs where CUDA is visible (it exits 2 otherwise). The corpus is encoded
once on CPU in fp32 (the reference), then on CUDA by each torch backend at
each batch size, timed after a warm-up batch (best of two passes, the GPU
synchronized). Agreement is the cosine between a document's CUDA vector and
its CPU vector (both unit-normalized), min and mean over the corpus.
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", required=True, help="BEIR folder whose corpus is encoded")
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--cpu-threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch

    from tamis.embeddings import Embedder
    from tamis.eval.retrieval import load_beir

    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing to compare")
        return 2
    texts = load_beir(args.beir).corpus["text"].to_pylist()

    def timed(embedder: Embedder, passes: int) -> tuple[np.ndarray, float]:
        embedder.encode(texts[:64])
        best, vectors = float("inf"), None
        for _ in range(passes):
            torch.cuda.synchronize()
            start = time.perf_counter()
            vectors = embedder.encode(texts)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return vectors, len(texts) / best

    torch.set_num_threads(args.cpu_threads)
    reference, cpu_rate = timed(Embedder(device="cpu", batch_size=32), passes=1)
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "docs": len(texts),
              "model": Embedder(device="cpu").info.to_dict(),
              f"cpu_fp32_{args.cpu_threads}threads_bs32_docs_per_s": round(cpu_rate, 1), "cuda": {}}
    for backend in ("torch", "torch-bf16"):
        for batch_size in map(int, args.batch_sizes.split(",")):
            vectors, rate = timed(Embedder(device="cuda", batch_size=batch_size, backend=backend), passes=2)
            cos = np.sum(vectors * reference, axis=1)
            result["cuda"][f"{backend}_bs{batch_size}"] = {
                "docs_per_s": round(rate, 1), "cos_vs_cpu_min": float(cos.min()), "cos_vs_cpu_mean": float(cos.mean())}
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
