"""Where the time goes, per operator type: ``python -m bench.op_profile --model-dir DIR``.

One warm-up caption, then one profiled caption (the vision graph once, the decoder for 20 steps)
with onnxruntime's ``SessionOptions.enable_profiling``; prints each graph's operator types by
total time. Run it on the fp32 and the int8 export to see what quantization and fusion changed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from PIL import Image

from inference.generate import OnnxDecoder, cross_attention_cache, greedy_decode
from inference.model_files import DECODER_FILE, VISION_FILE, load_generation, load_preprocess
from inference.preprocess import pixel_values
from inference.sessions import create_session

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE = REPO_ROOT / "tests" / "data" / "corpus" / "animal_cat_chelsea.png"
NEW_TOKENS = 20
THREADS = 2
TOP = 8


def op_times_ms(profile: Path) -> dict[str, float]:
    """Total kernel time by operator type (the ``Node`` events' ``op_name``) of the second half of
    the session's runs: the first caption warms up, the second is measured."""
    events = json.loads(profile.read_text())
    runs = sorted(event["ts"] for event in events if event.get("cat") == "Session" and event["name"] == "model_run")
    measured_from = runs[len(runs) // 2]
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= measured_from:
            totals[event["args"]["op_name"]] += event["dur"] / 1000
    return dict(totals)


def profile(model_dir: Path, workdir: Path) -> dict[str, dict[str, float]]:
    """Kernel time by operator type of each graph, for one caption after a warm-up caption."""
    generation, preprocess = load_generation(model_dir), load_preprocess(model_dir)
    pixels = pixel_values([Image.open(IMAGE).convert("RGB")], preprocess)
    vision = create_session(model_dir / VISION_FILE, THREADS, "cpu", profile_prefix=workdir / "vision")
    decoder = create_session(model_dir / DECODER_FILE, THREADS, "cpu", profile_prefix=workdir / "decoder")
    for _ in range(2):
        cross = cross_attention_cache(vision, pixels, generation.num_layers)
        greedy_decode(OnnxDecoder(decoder, generation.num_layers, "cpu"), cross, [], generation, NEW_TOKENS, NEW_TOKENS)
    return {
        "vision": op_times_ms(Path(vision.end_profiling())),
        f"decoder x {NEW_TOKENS} steps": op_times_ms(Path(decoder.end_profiling())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.op_profile", description=__doc__)
    parser.add_argument("--model-dir", type=Path, action="append", required=True, help="an export; may repeat")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for model_dir in args.model_dir:
            for graph, totals in profile(model_dir, Path(scratch)).items():
                total = sum(totals.values())
                ranked = sorted(totals.items(), key=lambda item: -item[1])
                shown = ", ".join(f"{op} {ms:.1f} ms ({ms / total:.0%})" for op, ms in ranked[:TOP])
                print(f"- {model_dir.name} {graph} ({total:.0f} ms in kernels): {shown}")


if __name__ == "__main__":
    main()
