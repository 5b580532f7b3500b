"""How often the faster set-ups caption like fp32: ``python -m bench.agreement --model-dir DIR``.

DIR is an fp32 export (``python -m inference.export ... --precision fp32``), a Hugging Face model
dir, a hub id, or ``tiny-random``; the last three are exported first (fp32 and int8, cached under
``--cache-dir`` as the service caches them). The int8 export is the sibling dir whose name ends in
``-int8`` instead of ``-fp32``, or ``--int8-dir``. Every set-up greedily captions the same images
(``images/``, the accepted photos of ``tests/data/corpus`` and deterministic synthetic pictures up
to ``--min-images``), and the table gives, against onnxruntime fp32, the share of identical
captions and of identical tokens (position by position over the longer of the two captions).
Set-ups: int8 on onnxruntime; the fp32 export on OpenVINO (bf16 where the CPU has it: the
default there), also with int8 decoder weights; and, given ``--hf-dir`` (the Hugging Face dir the export came from;
an export made by the service keeps it as ``source-model``), PyTorch with bf16 weights: what a
user of plain PyTorch in bf16 gets, for scale.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inference.captioner import BlipCaptioner, CaptionResult
from inference.model_files import is_exported_dir
from inference.model_source import cache_dir_for
from inference.preprocess import decode_image
from inference.settings import InferenceSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO_ROOT / "tests" / "data" / "corpus"
MAX_PIXELS = 50_000_000
THREADS = 2


@dataclass(frozen=True)
class Agreement:
    setup: str
    images: int
    same_captions: int
    same_tokens: int
    tokens: int


def photo_files() -> list[Path]:
    """Photos of ``images/`` and the corpus rows expected to be accepted, each file content once."""
    with (CORPUS_DIR / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    accepted = [CORPUS_DIR / row["file"] for row in rows if row["expected"] == "accept"]
    photos = (REPO_ROOT / "images").iterdir()
    candidates = sorted(path for path in photos if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    seen: set[str] = set()
    files = []
    for path in [*candidates, *accepted]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            files.append(path)
    return files


def synthetic_image(index: int, size: int = 384) -> Image.Image:
    """A deterministic picture: a seeded colour gradient with a few rectangles."""
    rng = np.random.default_rng(index)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = start + (end - start) * ramp[None, :, None] * ramp[:, None, None]
    for _ in range(4):
        x, y = rng.integers(0, size - 64, 2)
        pixels[y : y + rng.integers(16, 64), x : x + rng.integers(16, 64)] = rng.uniform(0, 255, 3)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def load_images(min_images: int) -> list[tuple[str, Image.Image]]:
    images = [(path.name, decode_image(path.read_bytes(), MAX_PIXELS)) for path in photo_files()]
    images += [(f"synthetic-{index}", synthetic_image(index)) for index in range(max(0, min_images - len(images)))]
    return images


def exported(model: str, precision: str, cache_dir: Path) -> Path:
    target = cache_dir_for(InferenceSettings(model=model, model_dir=cache_dir, precision=precision))  # type: ignore[arg-type]
    if not is_exported_dir(target):
        command = [sys.executable, "-m", "inference.export", "--model", model, "--output", str(target),
                   "--precision", precision]  # fmt: skip
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    return target


def model_dirs(model: str, int8_dir: Path | None, cache_dir: Path) -> tuple[Path, Path]:
    """(fp32 export, int8 export) for ``model``."""
    if not is_exported_dir(Path(model)):
        return exported(model, "fp32", cache_dir), int8_dir or exported(model, "int8", cache_dir)
    fp32 = Path(model)
    sibling = fp32.with_name(fp32.name.removesuffix("-fp32") + "-int8")
    if int8_dir is None and not is_exported_dir(sibling):
        raise SystemExit(f"no int8 export next to {fp32} ({sibling}); give --int8-dir or export it")
    return fp32, int8_dir or sibling


def caption_all(captioner: BlipCaptioner, images: list[tuple[str, Image.Image]]) -> list[CaptionResult]:
    return [captioner.caption_batch([image], None, None)[0][0] for _, image in images]


def compare(setup: str, reference: list[CaptionResult], other: list[CaptionResult], prefix: int) -> Agreement:
    same_captions = same_tokens = tokens = 0
    for a, b in zip(reference, other, strict=True):
        new_a, new_b = a.token_ids[prefix:], b.token_ids[prefix:]
        same_captions += new_a == new_b
        same_tokens += sum(x == y for x, y in zip(new_a, new_b, strict=False))
        tokens += max(len(new_a), len(new_b))
    return Agreement(setup, len(reference), same_captions, same_tokens, tokens)


def pytorch_bf16_captions(hf_dir: Path, images: list[tuple[str, Image.Image]], max_length: int) -> list[CaptionResult]:
    """Greedy captions of transformers' ``generate`` with the weights in bf16 (token ids only)."""
    import torch
    from transformers import BlipForConditionalGeneration, BlipProcessor

    torch.set_num_threads(THREADS)
    model = BlipForConditionalGeneration.from_pretrained(hf_dir, attn_implementation="eager").eval().to(torch.bfloat16)
    processor = BlipProcessor.from_pretrained(hf_dir)
    results = []
    with torch.inference_mode():
        for _, image in images:
            pixels = processor(images=image, return_tensors="pt").pixel_values.to(torch.bfloat16)
            ids = model.generate(pixel_values=pixels, num_beams=1, do_sample=False, max_length=max_length)[0].tolist()
            results.append(CaptionResult("", ids, len(ids) - 1))
    return results


def measure(
    fp32_dir: Path, int8_dir: Path, images: list[tuple[str, Image.Image]], hf_dir: Path | None = None
) -> list[Agreement]:
    fp32 = BlipCaptioner.load(fp32_dir, THREADS, runtime="onnxruntime")
    reference = caption_all(fp32, images)
    setups = {
        "int8 (onnxruntime)": BlipCaptioner.load(int8_dir, THREADS),
        "fp32 export on OpenVINO": BlipCaptioner.load(fp32_dir, THREADS, runtime="openvino"),
        "fp32 export on OpenVINO, int8 decoder weights": BlipCaptioner.load(
            fp32_dir, THREADS, runtime="openvino", int8_decoder=True
        ),
    }
    rows = []
    for name, captioner in setups.items():
        label = f"{name} ({captioner.runtime})" if "OpenVINO" in name else name
        rows.append(compare(label, reference, caption_all(captioner, images), prefix=1))
    if hf_dir is not None:
        bf16 = pytorch_bf16_captions(hf_dir, images, fp32.generation.max_length)
        rows.append(compare("PyTorch, bf16 weights (for scale)", reference, bf16, prefix=1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agreement", description=__doc__)
    parser.add_argument("--model-dir", required=True, help="fp32 export, Hugging Face dir, hub id, or tiny-random")
    parser.add_argument("--int8-dir", type=Path, help="int8 export (default: the -int8 sibling of --model-dir)")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / "models", help="where exports are made")
    parser.add_argument("--min-images", type=int, default=24)
    parser.add_argument("--hf-dir", type=Path, help="the Hugging Face dir of the model: adds PyTorch bf16")
    args = parser.parse_args()
    fp32_dir, int8_dir = model_dirs(args.model_dir, args.int8_dir, args.cache_dir)
    images = load_images(args.min_images)
    synthetic = sum(name.startswith("synthetic-") for name, _ in images)
    print(f"{fp32_dir.name}: greedy captions (the model's default length) of {len(images)} images "
          f"({len(images) - synthetic} photos, {synthetic} synthetic) against onnxruntime fp32\n")  # fmt: skip
    print("| set-up | images | identical captions | identical tokens |")
    print("|---|---:|---:|---:|")
    hf_dir = args.hf_dir or (fp32_dir / "source-model" if (fp32_dir / "source-model").is_dir() else None)
    for row in measure(fp32_dir, int8_dir, images, hf_dir):
        print(f"| {row.setup} | {row.images} | {row.same_captions / row.images:.0%} ({row.same_captions}) | "
              f"{row.same_tokens / row.tokens:.1%} ({row.same_tokens}/{row.tokens}) |")  # fmt: skip


if __name__ == "__main__":
    main()
