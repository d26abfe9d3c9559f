"""The sandbox's model catalogue: realistic endpoints, generated from one compact table.

Prices, units and durations are plausible figures for a sandbox, not fal's price list.
`historical_price` (per call) is unit price x the units a typical call bills.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sandbox import schemas

# Family -> output kind (what the result carries).
OUTPUT_KIND = {"t2i": "images", "i2i": "images", "upscale": "images", "i2v": "video", "t2v": "video",
               "tts": "audio", "audio": "audio", "separate": "audio", "stt": "text", "3d": "mesh",
               "train": "lora"}

# endpoint_id | display name | category | family | unit price | unit | typical units | duration s | status | tags
_TABLE = """
fal-ai/flux/dev|FLUX.1 [dev]|text-to-image|t2i|0.025|image|1|3.2|active|flux,popular
fal-ai/flux/schnell|FLUX.1 [schnell]|text-to-image|t2i|0.003|megapixels|1|0.9|active|flux,fast
fal-ai/flux-pro/v1.1|FLUX1.1 [pro]|text-to-image|t2i|0.04|image|1|4.5|active|flux,pro
fal-ai/flux-pro/v1.1-ultra|FLUX1.1 [pro] ultra|text-to-image|t2i|0.06|image|1|9.0|active|flux,pro,high-res
fal-ai/flux-lora|FLUX.1 [dev] with LoRAs|text-to-image|t2i|0.035|megapixels|1|4.0|active|flux,lora
fal-ai/flux-realism|FLUX Realism LoRA|text-to-image|t2i|0.025|megapixels|1|3.8|active|flux,photo
fal-ai/recraft-v3|Recraft V3|text-to-image|t2i|0.04|image|1|6.5|active|vector,design
fal-ai/ideogram/v2|Ideogram V2|text-to-image|t2i|0.08|image|1|7.0|active|typography
fal-ai/stable-diffusion-v35-large|Stable Diffusion 3.5 Large|text-to-image|t2i|0.065|image|1|5.5|active|sd3
fal-ai/fast-sdxl|Fast SDXL|text-to-image|t2i|0.00111|compute seconds|2|1.8|active|sdxl,fast
fal-ai/aura-flow|AuraFlow|text-to-image|t2i|0.00111|compute seconds|5|5.0|active|open-source
fal-ai/hidream-i1-full|HiDream I1 Full|text-to-image|t2i|0.05|megapixels|1|12.0|active|new
fal-ai/imagen4/preview|Imagen 4 Preview|text-to-image|t2i|0.05|image|1|6.0|active|google
fal-ai/kolors|Kolors|text-to-image|t2i|0.02|image|1|4.2|active|photo
fal-ai/stable-cascade|Stable Cascade|text-to-image|t2i|0.00111|compute seconds|4|4.0|deprecated|legacy
fal-ai/playground-v25|Playground v2.5|text-to-image|t2i|0.00111|compute seconds|3|3.0|deprecated|legacy
workflows/fal-ai/sdxl-refiner-pipeline|SDXL + Refiner workflow|text-to-image|t2i|0.00111|compute seconds|8|8.0|active|workflow
comfy/fal-ai/sdxl-turbo-graph|SDXL Turbo ComfyUI graph|text-to-image|t2i|0.00111|compute seconds|2|2.5|active|comfyui
fal-ai/flux/dev/image-to-image|FLUX.1 [dev] image-to-image|image-to-image|i2i|0.03|megapixels|1|3.5|active|flux,edit
fal-ai/flux-pro/kontext|FLUX.1 Kontext [pro]|image-to-image|i2i|0.04|image|1|6.0|active|flux,edit,new
fal-ai/clarity-upscaler|Clarity Upscaler|image-to-image|upscale|0.03|megapixels|4|18.0|active|upscale
fal-ai/esrgan|ESRGAN upscaler|image-to-image|upscale|0.00111|compute seconds|3|2.4|active|upscale,fast
fal-ai/creative-upscaler|Creative Upscaler|image-to-image|upscale|0.00111|compute seconds|20|20.0|active|upscale
fal-ai/birefnet|BiRefNet background removal|image-to-image|upscale|0.00111|compute seconds|1|1.2|active|background
fal-ai/imageutils/rembg|Remove background|image-to-image|upscale|0.00111|compute seconds|1|0.8|deprecated|background,legacy
fal-ai/kling-video/v2.1/master/image-to-video|Kling 2.1 Master image-to-video|image-to-video|i2v|0.28|seconds|5|240.0|active|video,kling
fal-ai/kling-video/v1.6/standard/image-to-video|Kling 1.6 Standard image-to-video|image-to-video|i2v|0.045|seconds|5|150.0|active|video,kling
fal-ai/minimax/video-01/image-to-video|MiniMax Video-01 image-to-video|image-to-video|i2v|0.5|videos|1|180.0|active|video
fal-ai/luma-dream-machine/image-to-video|Luma Dream Machine image-to-video|image-to-video|i2v|0.5|videos|1|120.0|active|video,luma
fal-ai/wan-i2v|Wan 2.1 image-to-video|image-to-video|i2v|0.4|videos|1|200.0|active|video,open-source
fal-ai/ltx-video/image-to-video|LTX Video image-to-video|image-to-video|i2v|0.02|videos|1|25.0|active|video,fast
fal-ai/stable-video|Stable Video Diffusion|image-to-video|i2v|0.075|videos|1|45.0|deprecated|video,legacy
fal-ai/veo3|Veo 3|text-to-video|t2v|0.75|seconds|8|300.0|active|video,google,audio
fal-ai/kling-video/v2.1/master/text-to-video|Kling 2.1 Master text-to-video|text-to-video|t2v|0.28|seconds|5|240.0|active|video,kling
fal-ai/minimax/hailuo-02/standard/text-to-video|MiniMax Hailuo-02 Standard|text-to-video|t2v|0.045|seconds|6|160.0|active|video
fal-ai/wan-t2v|Wan 2.1 text-to-video|text-to-video|t2v|0.4|videos|1|190.0|active|video,open-source
fal-ai/ltx-video|LTX Video|text-to-video|t2v|0.02|videos|1|22.0|active|video,fast
fal-ai/hunyuan-video|Hunyuan Video|text-to-video|t2v|0.4|videos|1|260.0|active|video,open-source
fal-ai/mochi-v1|Mochi 1|text-to-video|t2v|0.4|videos|1|210.0|deprecated|video,legacy
fal-ai/kokoro/american-english|Kokoro TTS (American English)|text-to-speech|tts|0.02|1000 characters|0.5|1.5|active|speech,fast
fal-ai/playai/tts/v3|PlayAI TTS v3|text-to-speech|tts|0.03|minutes|0.5|3.0|active|speech
fal-ai/elevenlabs/tts/multilingual-v2|ElevenLabs Multilingual v2|text-to-speech|tts|0.1|1000 characters|0.5|2.5|active|speech,multilingual
fal-ai/dia-tts|Dia TTS|text-to-speech|tts|0.04|1000 characters|0.5|6.0|active|speech,dialogue
fal-ai/f5-tts|F5 TTS|text-to-speech|tts|0.05|1000 characters|0.5|5.0|active|speech,voice-clone
fal-ai/minimax/speech-02-hd|MiniMax Speech-02 HD|text-to-speech|tts|0.1|1000 characters|0.5|4.0|active|speech
fal-ai/whisper|Whisper|speech-to-text|stt|0.00111|compute seconds|10|10.0|active|transcription
fal-ai/wizper|Wizper (Whisper v3, fast)|speech-to-text|stt|0.00111|compute seconds|4|4.0|active|transcription,fast
fal-ai/elevenlabs/speech-to-text|ElevenLabs Scribe|speech-to-text|stt|0.03|minutes|1|6.0|active|transcription
fal-ai/speech-to-text/turbo|Speech-to-text Turbo|speech-to-text|stt|0.0008|minutes|1|2.0|active|transcription,fast
fal-ai/stable-audio|Stable Audio Open|text-to-audio|audio|0.00111|compute seconds|15|15.0|active|music,sfx
fal-ai/lyria2|Lyria 2|text-to-audio|audio|0.1|30 seconds|1|20.0|active|music,google
fal-ai/ace-step|ACE-Step music|text-to-audio|audio|0.0002|seconds|60|25.0|active|music
fal-ai/elevenlabs/sound-effects|ElevenLabs sound effects|text-to-audio|audio|0.002|seconds|5|4.0|active|sfx
fal-ai/mmaudio-v2/text-to-audio|MMAudio v2 text-to-audio|text-to-audio|audio|0.001|seconds|8|9.0|active|sfx
fal-ai/demucs|Demucs stem separation|audio-to-audio|separate|0.00111|compute seconds|30|30.0|active|stems
fal-ai/trellis|TRELLIS image-to-3D|image-to-3d|3d|0.02|generations|1|30.0|active|3d,mesh
fal-ai/hunyuan3d/v2|Hunyuan3D 2.0|image-to-3d|3d|0.16|generations|1|55.0|active|3d,mesh
fal-ai/triposr|TripoSR|image-to-3d|3d|0.07|generations|1|8.0|active|3d,fast
fal-ai/tripo3d/tripo/v2.5/image-to-3d|Tripo 2.5 image-to-3D|image-to-3d|3d|0.2|generations|1|45.0|active|3d,textured
fal-ai/flux-lora-fast-training|FLUX LoRA fast training|training|train|2.0|training runs|1|420.0|active|training,flux
fal-ai/flux-lora-portrait-trainer|FLUX portrait LoRA trainer|training|train|0.0024|steps|1000|900.0|active|training,portrait
fal-ai/hunyuan-video-lora-training|Hunyuan Video LoRA training|training|train|5.0|training runs|1|1500.0|active|training,video
fal-ai/wan-trainer|Wan 2.1 LoRA trainer|training|train|5.0|training runs|1|1200.0|active|training,video
fal-ai/flux-kontext-trainer|FLUX Kontext trainer|training|train|0.0025|steps|1000|1000.0|active|training,edit
"""

_DESCRIPTIONS = {
    "text-to-image": "Generates images from a text prompt.",
    "image-to-image": "Transforms, edits or upscales an input image.",
    "image-to-video": "Animates an input image into a short video clip.",
    "text-to-video": "Generates a short video clip from a text prompt.",
    "text-to-speech": "Turns text into natural-sounding speech.",
    "speech-to-text": "Transcribes or translates speech audio to text.",
    "text-to-audio": "Generates music or sound effects from a text prompt.",
    "audio-to-audio": "Separates or transforms audio.",
    "image-to-3d": "Builds a textured 3D mesh from a single image.",
    "training": "Trains a LoRA adapter from a set of images.",
}
_TRAINED_FOR = {"fal-ai/flux-lora-fast-training": "fal-ai/flux-lora", "fal-ai/flux-lora-portrait-trainer": "fal-ai/flux-lora",
                "fal-ai/hunyuan-video-lora-training": "fal-ai/hunyuan-video", "fal-ai/wan-trainer": "fal-ai/wan-t2v",
                "fal-ai/flux-kontext-trainer": "fal-ai/flux-pro/kontext"}


@dataclass(frozen=True)
class Endpoint:
    """One catalogue entry."""

    endpoint_id: str
    display_name: str
    category: str
    family: str
    unit_price: float
    unit: str
    typical_units: float
    duration_s: float
    status: str
    tags: tuple[str, ...]
    index: int

    @property
    def historical_price(self) -> float:
        """What a typical call costs (the `historical_api_price` per call)."""
        return round(self.unit_price * self.typical_units, 6)

    @property
    def output_kind(self) -> str:
        """images | video | audio | text | mesh | lora."""
        return OUTPUT_KIND[self.family]

    @property
    def app_id(self) -> str:
        """owner/app (or namespace/owner/app): the part status/result/cancel URLs use."""
        parts = self.endpoint_id.split("/")
        keep = 3 if parts[0] in ("workflows", "comfy") else 2
        return "/".join(parts[:keep])

    def metadata(self, *, authenticated: bool) -> dict[str, Any]:
        """The §3.2 `metadata` object."""
        slug = self.endpoint_id.replace("/", "-")
        day = 1 + self.index % 28
        meta: dict[str, Any] = {
            "display_name": self.display_name,
            "category": self.category,
            "description": f"{self.display_name}: {_DESCRIPTIONS[self.category]}",
            "status": self.status,
            "tags": list(self.tags),
            "updated_at": f"2026-01-{day:02d}T12:00:00Z",
            "is_favorited": False if authenticated else None,
            "thumbnail_url": f"https://fal.media/files/sandbox/thumbnails/{slug}.png",
            "model_url": f"https://fal.run/{self.endpoint_id}",
            "date": f"2024-{1 + self.index % 12:02d}-{day:02d}T00:00:00Z",
            "highlighted": "popular" in self.tags or "new" in self.tags,
            "pinned": self.index < 2,
            "license_type": "research" if "open-source" in self.tags else "commercial",
            "group": {"key": self.app_id, "label": self.display_name.split(" ")[0]},
            "kind": "training" if self.family == "train" else "inference",
            "duration_estimate": round(self.duration_s / 60.0, 2),
        }
        if self.endpoint_id in _TRAINED_FOR:
            meta["inference_endpoint_ids"] = [_TRAINED_FOR[self.endpoint_id]]
        trainers = [t for t, inf in _TRAINED_FOR.items() if inf == self.endpoint_id]
        if trainers:
            meta["training_endpoint_ids"] = trainers
        return meta

    def openapi(self) -> dict[str, Any]:
        """A small OpenAPI 3.0 document for `expand=openapi-3.0`."""
        ref = {"$ref": "#/components/schemas/Input"}
        return {
            "openapi": "3.0.4",
            "info": {"title": self.display_name, "version": "1.0.0", "x-fal-metadata": {
                "endpointId": self.endpoint_id, "category": self.category}},
            "servers": [{"url": "https://queue.fal.run"}],
            "paths": {f"/{self.endpoint_id}": {"post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
                "responses": {"200": {"description": "Queued", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Output"}}}}},
            }}},
            "components": {"schemas": {"Input": schemas.json_schema(self.family),
                                       "Output": _output_schema(self.output_kind)}},
        }


_FILE = {"type": "object", "properties": {"url": {"type": "string"}, "content_type": {"type": "string"},
                                          "file_name": {"type": "string"}, "file_size": {"type": "integer"}}}


def _output_schema(kind: str) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {
        "images": {"images": {"type": "array", "items": _FILE}, "seed": {"type": "integer"}},
        "video": {"video": _FILE, "seed": {"type": "integer"}},
        "audio": {"audio": _FILE},
        "text": {"text": {"type": "string"}, "chunks": {"type": "array", "items": {"type": "object"}}},
        "mesh": {"model_mesh": _FILE},
        "lora": {"diffusers_lora_file": _FILE, "config_file": _FILE},
    }
    props = by_kind[kind]
    return {"type": "object", "title": "Output", "properties": props, "required": list(props)[:1]}


@functools.cache
def endpoints() -> tuple[Endpoint, ...]:
    """Every endpoint, in catalogue order."""
    rows = []
    for i, line in enumerate(ln for ln in _TABLE.strip().splitlines() if ln.strip()):
        eid, name, cat, fam, price, unit, typical, dur, status, tags = line.split("|")
        rows.append(Endpoint(eid, name, cat, fam, float(price), unit, float(typical), float(dur), status,
                             tuple(tags.split(",")), i))
    return tuple(rows)


@functools.cache
def by_id() -> dict[str, Endpoint]:
    """endpoint_id -> Endpoint."""
    return {e.endpoint_id: e for e in endpoints()}


def categories() -> list[str]:
    """Distinct categories, in catalogue order."""
    return list(dict.fromkeys(e.category for e in endpoints()))
