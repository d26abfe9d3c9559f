"""Plausible model outputs (and log lines) for a finished job, in fal's result shapes:
`images: [{url, width, height, content_type, file_name, file_size}]`, `video: {url,
content_type, file_name, file_size}`, `audio: {url, content_type, file_name, file_size,
duration}`, `text` + `chunks`. Outputs that come from a media input (image-to-image,
upscalers, image-to-video, speech-to-text) are computed from it (see `sandbox.media`)."""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox import media as M
from sandbox.catalog import Endpoint
from sandbox.inputs import MediaInput
from sandbox.media import CONTENT_TYPES, MediaStore

_SIZES = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
          "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
_MAX_SIDE = 256  # served files stay small; the sizes reported are those of the served file
_UPSCALE_MAX_SIDE = 2048
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


def _image_entry(media: MediaStore, base_url: str, name: str, i: int, w: int, h: int) -> dict[str, Any]:
    return {**_file(media, base_url, name, f"image_{i}"), "width": w, "height": h}


def _derived_images(ep: Endpoint, inp: dict[str, Any], src: MediaInput, seed: int, base_url: str,
                    media: MediaStore) -> list[dict[str, Any]]:
    assert src.image is not None
    prompt = str(inp.get("prompt") or "")
    if ep.family == "upscale":
        out = M.upscale_image(src.image, float(inp.get("scale", 2) or 2), _UPSCALE_MAX_SIDE)
        name = media.put("png", M.encode_png(out))
        return [_image_entry(media, base_url, name, 0, out.width, out.height)]
    images = []
    for i in range(int(inp.get("num_images", 1) or 1)):
        digest = hashlib.sha256(f"{ep.endpoint_id}|{prompt}|{seed + i}|{src.digest}".encode()).digest()
        out = M.derive_image(src.image, digest, float(inp.get("strength", 0.95)), prompt)
        name = media.put("png", M.encode_png(out))
        images.append(_image_entry(media, base_url, name, i, out.width, out.height))
    return images


def _transcript(info: M.WavInfo, digest: str) -> tuple[str, list[dict[str, Any]]]:
    if info.text is not None:
        words = list(info.words) or [(w, 0.0, info.duration) for w in info.text.split()]
        chunks = [{"timestamp": [words[i][1], words[min(i + 3, len(words) - 1)][2]],
                   "text": " ".join(w for w, _, _ in words[i:i + 4])} for i in range(0, len(words), 4)]
        return info.text, chunks
    # Not made by the sandbox: a stable stand-in transcript spread over the audio's length.
    raw = hashlib.sha256(digest.encode()).digest()
    names = [_WORDS[b % len(_WORDS)] for b in raw[:12]]
    span = info.duration / 3 if info.duration else 1.5
    chunks = [{"timestamp": [round(i * span, 3), round((i + 1) * span, 3)], "text": " ".join(names[i * 4:i * 4 + 4])}
              for i in range(3)]
    return " ".join(names), chunks


def build_output(ep: Endpoint, inp: dict[str, Any], request_id: str, base_url: str,
                 media: MediaStore, inference_time: float,
                 inputs: dict[str, MediaInput] | None = None) -> dict[str, Any]:
    """The model's output JSON for a successful job (`inputs`: its read media inputs)."""
    inputs = inputs or {}
    seed = seed_for(request_id, inp)
    prompt = str(inp.get("prompt") or inp.get("text") or inp.get("image_url") or inp.get("audio_url") or "")
    material = f"{ep.endpoint_id}|{prompt}|{seed}|{'|'.join(m.digest for m in inputs.values())}"
    kind = ep.output_kind
    source = inputs.get("image_url")
    if kind == "images":
        if source is not None and source.image is not None:
            images = _derived_images(ep, inp, source, seed, base_url, media)
        else:
            w, h = _scaled(*_SIZES.get(str(inp.get("image_size")), (1024, 768)))
            images = []
            for i in range(int(inp.get("num_images", 1) or 1)):
                name = media.register("png", f"{material}|{i}", width=w, height=h, text=str(inp.get("prompt") or ""))
                images.append(_image_entry(media, base_url, name, i, w, h))
        return {"images": images, "seed": seed, "prompt": str(inp.get("prompt") or ""),
                "has_nsfw_concepts": [False] * len(images), "timings": {"inference": round(inference_time, 3)}}
    if kind == "video":
        if source is not None and source.image is not None:
            name = media.put("gif", M.animate_image(source.image, float(inp.get("duration", 5) or 5)))
            return {"video": _file(media, base_url, name, "video"), "seed": seed}
        w, h = (192, 108) if inp.get("aspect_ratio", "16:9") == "16:9" else (
            (108, 192) if inp.get("aspect_ratio") == "9:16" else (144, 144))
        name = media.register("gif", material, width=w, height=h)
        return {"video": _file(media, base_url, name, "video"), "seed": seed}
    if kind == "audio":
        if ep.family == "tts":
            text, speed = str(inp.get("text") or ""), float(inp.get("speed", 1.0) or 1.0)
            _, seconds = M.speech_plan(text, speed)
            name = media.register("wav", material, text=text, speed=speed)
        else:
            seconds = min(3.0, float(inp.get("seconds_total", 3) or 3))
            name = media.register("wav", material, seconds=seconds)
        return {"audio": {**_file(media, base_url, name, "audio"), "duration": seconds}}
    if kind == "text":
        audio = inputs.get("audio_url")
        if audio is not None and audio.audio is not None:
            text, chunks = _transcript(audio.audio, audio.digest)
        else:
            text, chunks = _transcript(M.WavInfo(4.5, 16000, 1), material)
        return {"text": text, "chunks": chunks, "inferred_languages": [str(inp.get("language") or "en")]}
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
