"""Model names -> pricing families, and hints about cheaper families.

Providers report the *pinned snapshot* a request ran on (``gpt-4o-mini-2024-07-18``,
``claude-sonnet-4-5-20250929``), while price lists name the *family* (``gpt-4o-mini``).
Listing every snapshot would break on the next release, so the family is derived by rule:
strip a trailing snapshot date and nothing else. The handful of snapshots that were sold at
a price different from their family's are listed explicitly in ``_SNAPSHOT_FAMILIES``.

Why not strip ``-preview``: a preview is usually a product of its own with its own price
(``gpt-4o-audio-preview``, ``gpt-4.5-preview``); folding it into a GA family would price it
wrongly, whereas leaving it alone makes it visibly unpriced until a price row exists.
``-latest`` *is* stripped: by definition it is an alias of the newest snapshot of the family.

Fine-tunes (``ft:<base snapshot>:<org>:<suffix>:<id>``) keep their base family for grouping
but are flagged, because fine-tuned inference is billed above the base model's list price;
``ModelInfo.price_family`` (``ft:<family>``) is the key a price row must use to price them.

Example:
    >>> model_family("gpt-4o-mini-2024-07-18")
    'gpt-4o-mini'
    >>> parse_model("ft:gpt-4o-mini-2024-07-18:acme::abc123").price_family
    'ft:gpt-4o-mini'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FINE_TUNE_PREFIX = "ft:"

# A trailing snapshot tag: ISO date (-2024-08-06), compact date (-20250929) or the old
# month-day tag (-0613, -1106). Month and day are range-checked so that a version number
# such as "-0300" is not mistaken for a date.
_SNAPSHOT_SUFFIX = re.compile(
    r"-(?:\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"|\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$"
)
_LATEST_SUFFIX = "-latest"

# Snapshots sold at a price other than the family the date-stripping rule would give.
_SNAPSHOT_FAMILIES: dict[str, str] = {
    # GPT-4 Turbo previews were named gpt-4-*; at gpt-4 prices they would be 3x too dear.
    "gpt-4-1106-preview": "gpt-4-turbo",
    "gpt-4-0125-preview": "gpt-4-turbo",
    "gpt-4-turbo-preview": "gpt-4-turbo",
    "gpt-4-vision-preview": "gpt-4-turbo",
    "gpt-4-1106-vision-preview": "gpt-4-turbo",
    # The first gpt-4o snapshot kept its launch price (5 / 15), double today's gpt-4o.
    "gpt-4o-2024-05-13": "gpt-4o-2024-05-13",
    # Older gpt-3.5-turbo snapshots kept their own (higher) prices: a family of their own,
    # unpriced until someone adds their rows, rather than silently billed as -0125.
    "gpt-3.5-turbo-0613": "gpt-3.5-turbo-0613",
    "gpt-3.5-turbo-1106": "gpt-3.5-turbo-1106",
    "gpt-3.5-turbo-16k-0613": "gpt-3.5-turbo-16k",
    # o1-preview was sold at o1's price.
    "o1-preview": "o1",
}


@dataclass(frozen=True)
class ModelInfo:
    """What a raw model name means for pricing: its family and whether it is a fine-tune."""

    family: str
    fine_tuned: bool = False

    @property
    def price_family(self) -> str:
        """The family key a price row must carry to price this model."""
        return FINE_TUNE_PREFIX + self.family if self.fine_tuned else self.family


def parse_model(model: str, provider: str = "openai") -> ModelInfo:
    """Parse a raw model name as exported by ``provider`` into a :class:`ModelInfo`.

    >>> parse_model("claude-sonnet-4-5-20250929", "anthropic")
    ModelInfo(family='claude-sonnet-4-5', fine_tuned=False)
    """
    del provider  # the naming rules coincide for the providers supported today
    name = model.strip().lower()
    if name.startswith(FINE_TUNE_PREFIX):
        base = name[len(FINE_TUNE_PREFIX) :].split(":", 1)[0]
        return ModelInfo(family=_snapshot_to_family(base), fine_tuned=True)
    return ModelInfo(family=_snapshot_to_family(name))


def model_family(model: str, provider: str = "openai") -> str:
    """The pricing family of a raw model name (fine-tunes give their base family).

    >>> model_family("gpt-4-0613")
    'gpt-4'
    """
    return parse_model(model, provider).family


def _snapshot_to_family(name: str) -> str:
    """Strip the snapshot tag of one (lower-case, non-fine-tune) model name."""
    if name in _SNAPSHOT_FAMILIES:
        return _SNAPSHOT_FAMILIES[name]
    if name.endswith(_LATEST_SUFFIX):
        name = name[: -len(_LATEST_SUFFIX)]
    stripped = _SNAPSHOT_SUFFIX.sub("", name)
    return _SNAPSHOT_FAMILIES.get(stripped, stripped)


def display_to_api_family(display_name: str) -> str:
    """Turn a Console display name into the API family, for Anthropic's cost CSV.

    Anthropic's display names and API ids differ only in case, spaces and dots, for both
    naming schemes ("Claude Sonnet 4.5", "Claude 3.5 Sonnet").

    >>> display_to_api_family("Claude Sonnet 4.5")
    'claude-sonnet-4-5'
    >>> display_to_api_family("Claude 3.5 Sonnet")
    'claude-3-5-sonnet'
    """
    words = display_name.strip().lower().replace(".", "-").split()
    return "-".join(words)


# Capability classes of the families in the seeded price book. A class groups models a
# team could plausibly swap for one another; it says nothing about quality within a class.
_CAPABILITY_CLASSES: dict[str, tuple[str, ...]] = {
    "flagship": (
        "gpt-5",
        "gpt-4.1",
        "gpt-4o",
        "gpt-4o-2024-05-13",
        "gpt-4-turbo",
        "gpt-4",
        "gpt-4-32k",
        "o3",
        "o1",
        "claude-opus-4-1",
        "claude-sonnet-4-5",
    ),
    "mini": (
        "gpt-5-mini",
        "gpt-4.1-mini",
        "gpt-4o-mini",
        "o4-mini",
        "o3-mini",
        "o1-mini",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-0613",
        "gpt-3.5-turbo-1106",
        "gpt-3.5-turbo-16k",
        "claude-haiku-4-5",
    ),
    "nano": ("gpt-5-nano", "gpt-4.1-nano"),
    "embedding": ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"),
}
_CLASS_OF: dict[str, str] = {
    family: cls for cls, families in _CAPABILITY_CLASSES.items() for family in families
}

# Legacy family -> a current family of the same class that is cheaper on input *and*
# output at list price. Non-reasoning models map to non-reasoning ones (gpt-4.1, not
# gpt-5) because a reasoning model bills hidden reasoning tokens as output, which would
# make the "saving" unreliable; o1 maps to o3, its reasoning successor.
_CHEAPER_SUCCESSOR: dict[str, str] = {
    "gpt-4": "gpt-4.1",
    "gpt-4-32k": "gpt-4.1",
    "gpt-4-turbo": "gpt-4.1",
    "gpt-4o-2024-05-13": "gpt-4o",
    "o1": "o3",
    "gpt-3.5-turbo": "gpt-4o-mini",
    "gpt-3.5-turbo-0613": "gpt-4o-mini",
    "gpt-3.5-turbo-1106": "gpt-4o-mini",
    "gpt-3.5-turbo-16k": "gpt-4o-mini",
    "text-embedding-ada-002": "text-embedding-3-small",
}


def capability_class(family: str) -> str | None:
    """``"flagship"``, ``"mini"``, ``"nano"`` or ``"embedding"``; None when not known.

    >>> capability_class("gpt-4o-mini")
    'mini'
    """
    return _CLASS_OF.get(family)


def cheaper_alternative(family: str) -> str | None:
    """A current, cheaper family of the same class for a legacy family; None otherwise.

    A hint for the insights module, not a promise of equal quality.

    >>> cheaper_alternative("gpt-4")
    'gpt-4.1'
    """
    return _CHEAPER_SUCCESSOR.get(family)
