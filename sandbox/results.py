"""Plausible model outputs (and log lines) for a finished job."""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.catalog import Endpoint
from sandbox.media import CONTENT_TYPES, MediaStore

_SIZES = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
          "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
_MAX_SIDE = 256  # served files stay small; the sizes reported are those of the served file
_WORDS = ("the quick brown fox jumps over a lazy dog while the sandbox hums along quietly "
          "and every word here is made up for the transcript").split()


def seed_for(request_id: str, inp: dict[str, Any]) -> int:
    """The input's seed, or one derived from the request id."""
    seed = inp.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:4], "big")


def _scaled(w: int, h: int) -> tuple[int, int]:
    k = _MAX_SIDE / max(w, h)
    return max(8, int(w * k)), max(8, int(h * k))


def _file(media: MediaStore, base_url: str, name: str, label: str) -> dict[str, Any]:
    ext = name.rsplit(".", 1)[1]
    return {"url": f"{base_url}/_media/{name}", "content_type": CONTENT_TYPES[ext],
            "file_name": f"{label}.{ext}", "file_size": media.size(name)}


def build_output(ep: Endpoint, inp: dict[str, Any], request_id: str, base_url: str,
                 media: MediaStore, inference_time: float) -> dict[str, Any]:
    """The model's output JSON for a successful job."""
    seed = seed_for(request_id, inp)
    prompt = str(inp.get("prompt") or inp.get("text") or inp.get("image_url") or inp.get("audio_url") or "")
    material = f"{ep.endpoint_id}|{prompt}|{seed}"
    kind = ep.output_kind
    if kind == "images":
        w, h = _scaled(*_SIZES.get(str(inp.get("image_size")), (1024, 768)))
        images = []
        for i in range(int(inp.get("num_images", 1) or 1)):
            name = media.register("png", f"{material}|{i}", width=w, height=h)
            images.append({**_file(media, base_url, name, f"image_{i}"), "width": w, "height": h})
        return {"images": images, "seed": seed, "prompt": prompt, "has_nsfw_concepts": [False] * len(images),
                "timings": {"inference": round(inference_time, 3)}}
    if kind == "video":
        w, h = (192, 108) if inp.get("aspect_ratio", "16:9") == "16:9" else (
            (108, 192) if inp.get("aspect_ratio") == "9:16" else (144, 144))
        name = media.register("gif", material, width=w, height=h)
        return {"video": _file(media, base_url, name, "video"), "seed": seed}
    if kind == "audio":
        if ep.family == "tts":
            seconds = min(4.0, max(0.5, len(prompt) / 15))
        else:
            seconds = min(3.0, float(inp.get("seconds_total", 3) or 3))
        name = media.register("wav", material, seconds=seconds)
        return {"audio": {**_file(media, base_url, name, "audio"), "duration": seconds}}
    if kind == "text":
        digest = hashlib.sha256(material.encode()).digest()
        words = [_WORDS[b % len(_WORDS)] for b in digest[:12]]
        chunks = [{"timestamp": [i * 1.5, i * 1.5 + 1.5], "text": " ".join(words[i * 4:i * 4 + 4])}
                  for i in range(3)]
        return {"text": " ".join(words), "chunks": chunks, "inferred_languages": ["en"]}
    if kind == "mesh":
        name = media.register("glb", material)
        return {"model_mesh": _file(media, base_url, name, "model"), "seed": seed,
                "timings": {"inference": round(inference_time, 3)}}
    name = media.register("safetensors", material)
    return {"diffusers_lora_file": _file(media, base_url, name, "pytorch_lora_weights"),
            "config_file": {"url": f"{base_url}/_media/{name}", "content_type": "application/octet-stream",
                            "file_name": "config.json", "file_size": media.size(name)}}


def log_messages(ep: Endpoint, inp: dict[str, Any]) -> list[str]:
    """The log lines a run of this endpoint prints, in order."""
    if ep.family in ("t2i", "i2i"):
        steps = int(inp.get("num_inference_steps", 28) or 28)
        marks = sorted({max(1, steps * k // 4) for k in range(1, 5)})
        return (["Loading model weights", "Model loaded"]
                + [f"step {m}/{steps}" for m in marks] + ["Encoding images"])
    if ep.family == "train":
        steps = int(inp.get("steps", 1000) or 1000)
        return (["Downloading training images", "Preprocessing 12 images", "Starting training"]
                + [f"step {steps * k // 5}/{steps} loss={0.12 - 0.015 * k:.3f}" for k in range(1, 6)]
                + ["Saving LoRA weights"])
    if ep.output_kind == "video":
        return ["Loading model weights", "Encoding conditioning", "Denoising frames 0-24",
                "Denoising frames 24-48", "Decoding video", "Muxing output"]
    return ["Loading model weights", "Processing input", "Running inference", "Writing output"]
