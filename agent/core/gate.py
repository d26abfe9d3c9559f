"""The checks every tool call passes, whoever asked for it (the model or a slash command).

`ToolGate` owns the session's money: the endpoints' prices it has learned, what was spent,
what is left. It refuses a tool outside the persona's scope and a submit whose cost does not
fit the remaining budget; it says which calls need a human's approval.

A submit's cost is the cost of *that* call: the quantity its arguments ask for (`num_images`,
`duration`, ...) times the endpoint's unit price (see `call_cost`). Prices come from the
session's `get_pricing` results, else from the gate's own `price_of(endpoint_id)` lookup,
else from a single-endpoint estimate the session made. `money` formats dollars everywhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent.core.money import money
from tools.outcome import find_field, outcome_of
from tools.registry import SUBMIT, TOOL_KINDS

__all__ = [
    "ESTIMATE", "UNKNOWN_SUBMIT", "PRICING", "money", "Price", "CallCost", "IMAGE_SIZES", "call_quantity", "call_cost",
    "PriceOf", "ToolGate", "submit_key", "estimate_total"
]


ESTIMATE = "estimate_pricing"
UNKNOWN_SUBMIT = "SubmitUnknownError"
"""The error type of a submit that reached fal (or may have) without a usable answer."""
PRICING = "get_pricing"


def _as_number(value: Any) -> float | None:
    """A float from an int/float/numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip().rstrip("sS")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Price:
    """What one endpoint costs: `unit_price` dollars per `unit` (fal's word: image, seconds...).

    `unit` is None when only a single-endpoint unit-price estimate told the price;
    `per_call_usd`, when known, is fal's typical (historical) price of one call."""

    endpoint_id: str
    unit_price: float | None
    unit: str | None
    source: str = "get_pricing"
    per_call_usd: float | None = None


@dataclass(frozen=True)
class CallCost:
    """The cost of one submit: `usd` (None: unknown) and how it was reckoned (`basis`)."""

    usd: float | None
    basis: str
    quantity: float | None = None
    unit: str | None = None
    unit_price: float | None = None


# fal's image_size names -> pixels (the sizes fal's image models take).
IMAGE_SIZES = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
               "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
_SECONDS_FIELDS = ("duration", "seconds_total", "duration_seconds", "seconds", "length_seconds")


def _norm_unit(unit: str) -> str:
    """`Images` -> `image`, `compute seconds` -> `compute second`, `1000 characters` kept."""
    u = " ".join(unit.lower().replace("_", " ").split())
    return u[:-1] if u.endswith("s") and not u.endswith("ss") else u


def _count(value: Any, default: float = 1.0) -> float:
    number = _as_number(value)
    return number if number is not None and number > 0 else default


def _megapixels(arguments: dict[str, Any]) -> float:
    """Billed megapixels of one image: pixels / 1024², rounded up (named sizes are 1)."""
    size = arguments.get("image_size")
    if isinstance(size, dict):
        w, h = _as_number(size.get("width")), _as_number(size.get("height"))
    elif isinstance(size, str) and size in IMAGE_SIZES:
        w, h = IMAGE_SIZES[size]
    else:
        w, h = _as_number(arguments.get("width")), _as_number(arguments.get("height"))
    if not w or not h:
        return 1.0
    return float(max(1, math.ceil(w * h / (1024 * 1024) - 1e-9)))


def _seconds(arguments: dict[str, Any]) -> tuple[float, str] | None:
    """The seconds a call asks for, and which field said so; None when none does."""
    for name in _SECONDS_FIELDS:
        seconds = _as_number(arguments.get(name))
        if seconds is not None and seconds > 0:
            return seconds, name
    frames = _as_number(arguments.get("num_frames"))
    if frames:
        fps = _as_number(arguments.get("frames_per_second") or arguments.get("fps"))
        return frames / (fps or 24.0), "num_frames" if fps else "num_frames at 24 fps"
    return None


def _plural(n: float, word: str) -> str:
    shown = f"{n:g}"
    return f"{shown} {word}" if n == 1 or word.endswith("s") else f"{shown} {word}s"


def call_quantity(unit: str | None, arguments: dict[str, Any]) -> tuple[float, str, bool]:
    """(billing units this call asks for, a readable phrase, whether it was assumed)."""
    args = arguments if isinstance(arguments, dict) else {}
    images = _count(args.get("num_images"))
    if unit is None:  # a price from an estimate: count what the call plainly asks for
        timed = _seconds(args)
        if "num_images" in args:
            return images, _plural(images, "unit"), False
        if timed:
            return timed[0], _plural(timed[0], "unit"), False
        return 1.0, "1 unit (one call)", True
    u = _norm_unit(unit)
    if u == "image":
        return images, _plural(images, "image"), False
    if u == "megapixel":
        mp = images * _megapixels(args)
        return mp, f"{_plural(mp, 'megapixel')} ({_plural(images, 'image')})", False
    if u in ("second", "30 second", "minute"):
        found = _seconds(args)
        if found is None:
            return 1.0, f"1 {u} (assumed: no duration in the arguments)", True
        seconds, field = found
        per = {"second": 1.0, "30 second": 30.0, "minute": 60.0}[u]
        n = math.ceil(seconds / per - 1e-9) if per > 1 else seconds
        return float(n), f"{_plural(float(n), u)} ({field})", False
    if u in ("1000 character", "character"):
        text = args.get("text") or args.get("prompt")
        if isinstance(text, str) and text:
            n = len(text) / 1000 if u.startswith("1000") else float(len(text))
            return n, f"{len(text)} characters", False
        return 1.0, f"1 {u} (assumed: no text in the arguments)", True
    if u == "step" and _as_number(args.get("steps")):
        steps = _count(args.get("steps"))
        return steps, _plural(steps, "step"), False
    if u in ("video", "generation", "training run", "call", "request", "run", "unit", "output"):
        return 1.0, f"1 {u} (one call)", False
    return 1.0, f"1 {u} (assumed: one per call)", True


def call_cost(price: Price | None, arguments: dict[str, Any]) -> CallCost:
    """What one submit with these model `arguments` costs at `price` (None: not known)."""
    if price is None or price.unit_price is None:
        if price is not None and price.per_call_usd is not None:
            return CallCost(round(price.per_call_usd, 6), f"typical price of one call: {money(price.per_call_usd)}")
        return CallCost(None, "cost unknown: no price for this endpoint")
    quantity, phrase, assumed = call_quantity(price.unit, arguments)
    if assumed and price.per_call_usd is not None:  # fal's typical call beats a guessed quantity
        return CallCost(round(price.per_call_usd, 6),
                        f"typical price of one call (billed per {price.unit}): {money(price.per_call_usd)}",
                        None, price.unit, price.unit_price)
    unit = _norm_unit(price.unit) if price.unit else ""
    per = (f"/{price.unit}" if unit[:1].isdigit() else f"/{unit}") if unit else " a unit"
    usd = round(quantity * price.unit_price, 6)
    return CallCost(usd, f"{phrase} × {money(price.unit_price)}{per}", quantity, price.unit, price.unit_price)


PriceOf = Callable[[str], Awaitable["Price | None"]]


class ToolGate:
    """Scope, budget and approval rules for one session.

    `prices` maps an endpoint id to what the session knows of its price. `price_of`, when
    given, fetches a price the session does not know yet (it may return None). An approved
    submit that succeeds adds the cost of the call that ran to `spent_usd`.
    """

    def __init__(self, persona: Any, known_tools: set[str] | None = None,
                 price_of: PriceOf | None = None) -> None:
        self.persona = persona
        self.known = set(known_tools or ()) | set(TOOL_KINDS)
        self.spent_usd = 0.0
        self.unpriced_submits = 0
        """Submits that ran at an unknown cost (not in `spent_usd`)."""
        self.prices: dict[str, Price] = {}
        self.price_of = price_of
        self._unknown_submits: dict[str, int] = {}
        """Submits whose outcome is unknown (SubmitUnknownError): their key -> the turn."""

    @property
    def budget_usd(self) -> float | None:
        """The persona's cap for this session (None: no cap)."""
        return _as_number(getattr(self.persona, "budget_usd", None))

    @property
    def budget_left_usd(self) -> float | None:
        """What may still be spent in this session."""
        cap = self.budget_usd
        return None if cap is None else max(0.0, round(cap - self.spent_usd, 6))

    def allowed(self) -> list[str]:
        """The persona's tool names."""
        return list(getattr(self.persona, "tools", []) or [])

    def kind(self, name: str) -> str:
        """read / spend / destructive / upload for a fal tool; for another (an MCP server's),
        `external` when the persona wants it approved, else read."""
        known = TOOL_KINDS.get(name)
        if known is not None:
            return known
        return "external" if self.needs_approval(name) else "read"

    def needs_approval(self, name: str) -> bool:
        """True when the persona wants a human's yes before `name` runs."""
        return name in (getattr(self.persona, "approval", None) or [])

    # -- prices -----------------------------------------------------------------------------
    async def price_for(self, endpoint: str) -> Price | None:
        """The endpoint's price: known to the session, else looked up (and remembered)."""
        known = self.prices.get(endpoint)
        if known is not None and known.unit is not None:
            return known
        if self.price_of is not None and endpoint:
            try:
                fetched = await self.price_of(endpoint)
            except Exception:  # no price is "cost unknown", never a crash
                fetched = None
            if fetched is not None:
                self.prices[endpoint] = fetched
                return fetched
        return known

    async def cost_of(self, args: dict[str, Any]) -> CallCost:
        """The cost of the submit `args` describe (the price is fetched when not known)."""
        endpoint = str(args.get("endpoint_id") or "")
        arguments = args.get("arguments")
        return call_cost(await self.price_for(endpoint), arguments if isinstance(arguments, dict) else {})

    def refusal(self, name: str, args: dict[str, Any], cost: CallCost | None = None) -> str | None:
        """Why this call may not run (a message for the model), or None when it may.

        A submit is refused when its `cost` is known and more than what is left; when it is
        unknown, only a persona that asks no one (no approval) has it refused under a cap."""
        persona = getattr(self.persona, "name", "this persona")
        if name not in self.known:
            return f"Error: there is no tool named {name!r}. Use one of: {', '.join(self.allowed())}."
        if name not in self.allowed():
            return (f"Error: {name} is outside the scope of the {persona} persona; it was not run. "
                    f"Allowed tools: {', '.join(self.allowed())}.")
        if name == SUBMIT and cost is not None:
            return self._budget_refusal(args, cost)
        return None

    def _budget_refusal(self, args: dict[str, Any], cost: CallCost) -> str | None:
        endpoint = args.get("endpoint_id")
        left = self.budget_left_usd
        if left is None:
            return None
        if cost.usd is None:
            if self.needs_approval(SUBMIT):
                return None  # the human sees "cost unknown" and decides
            return (f"Error: the cost of a submit to {endpoint} is unknown (no price could be had) and "
                    f"this session has a {money(self.budget_usd)} budget; nothing was submitted. "
                    "Call get_pricing for it, or ask the user.")
        if cost.usd > left + 1e-9:
            return (f"Error: this submit to {endpoint} costs {money(cost.usd)} ({cost.basis}), more than "
                    f"the {money(left)} left of this session's {money(self.budget_usd)} budget; nothing "
                    "was submitted. Ask for less (fewer images, shorter) or ask the user.")
        return None

    # -- learning from results ----------------------------------------------------------------
    def note_prices(self, artifact: Any) -> None:
        """Remember the unit prices a get_pricing result lists."""
        if hasattr(artifact, "model_dump"):
            artifact = artifact.model_dump(mode="json")
        rows = artifact.get("prices") if isinstance(artifact, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or not row.get("endpoint_id"):
                continue
            unit_price = _as_number(row.get("unit_price"))
            if unit_price is None:
                continue
            endpoint = str(row["endpoint_id"])
            old = self.prices.get(endpoint)
            self.prices[endpoint] = Price(endpoint, unit_price, str(row.get("unit") or "call"), PRICING,
                                          old.per_call_usd if old else None)

    def note_estimate(self, args: dict[str, Any], total: float) -> None:
        """A single-endpoint estimate tells a price: per call (historical) or per unit."""
        endpoints = args.get("endpoints") or {}
        if not isinstance(endpoints, dict) or len(endpoints) != 1:
            return  # a total over several endpoints says nothing about any one of them
        (endpoint, quantity), = endpoints.items()
        quantity = _as_number(quantity)
        if not quantity:
            return
        endpoint, per = str(endpoint), round(total / quantity, 9)
        old = self.prices.get(endpoint)
        if args.get("estimate_type") == "historical_api_price":
            self.prices[endpoint] = (Price(endpoint, old.unit_price, old.unit, old.source, per) if old
                                     else Price(endpoint, None, None, ESTIMATE, per))
        elif old is None or old.unit is None:
            self.prices[endpoint] = Price(endpoint, per, None, ESTIMATE, old.per_call_usd if old else None)

    def may_exist(self, args: dict[str, Any], turn: int) -> bool:
        """True when a submit of these same arguments earlier in `turn` may have created a
        request at fal (its answer was lost): submitting again could pay twice."""
        return self._unknown_submits.get(submit_key(args)) == turn

    def note_result(self, name: str, args: dict[str, Any], total: float | None, error: bool,
                    cost: CallCost | None = None, artifact: Any = None, turn: int = 0) -> None:
        """Learn from a finished call: prices and estimates; count a submit's `cost`; remember a
        submit whose outcome is unknown (for `may_exist`)."""
        if error:
            if name == SUBMIT and outcome_of(artifact, "error").error.get("type") == UNKNOWN_SUBMIT:
                self._unknown_submits[submit_key(args)] = turn
            return
        if name == ESTIMATE and total is not None:
            self.note_estimate(args, total)
        elif name == PRICING:
            self.note_prices(artifact)
        elif name == SUBMIT:
            if cost is None or cost.usd is None:
                self.unpriced_submits += 1
            else:
                self.spent_usd = round(self.spent_usd + cost.usd, 6)


def submit_key(args: dict[str, Any]) -> str:
    """What makes two submits the same: the endpoint and the arguments (key order aside)."""
    endpoint = str(args.get("endpoint_id") or "").strip().strip("/")
    return json.dumps([endpoint, args.get("arguments")], sort_keys=True, default=str)


def estimate_total(result: Any) -> float | None:
    """The total cost an estimate_pricing result reports (a ToolMessage), from its artifact,
    else from its text."""
    total = find_field(getattr(result, "artifact", None), "total_cost")
    if isinstance(total, (int, float)):
        return float(total)
    content = getattr(result, "content", "")
    text = content if isinstance(content, str) else str(content)
    hit = (re.search(r"total_cost[\"']?\s*[:=]\s*([0-9.]+)", text)
           or re.search(r"\$\s*([0-9]+(?:\.[0-9]+)?)", text))
    try:
        return float(hit.group(1)) if hit else None
    except ValueError:
        return None
