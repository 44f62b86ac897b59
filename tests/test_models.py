"""Model name -> family rules, display names, and the cheaper-alternative hints."""

import pytest

from analytics.models import (
    capability_class,
    cheaper_alternative,
    display_to_api_family,
    model_family,
    parse_model,
)
from analytics.pricing import load_price_book


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("o1-2024-12-17", "o1"),
        ("o1-preview", "o1"),
        ("o1-preview-2024-09-12", "o1"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-0314", "gpt-4"),
        ("gpt-4-32k-0613", "gpt-4-32k"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4-1106-preview", "gpt-4-turbo"),
        ("gpt-4-0125-preview", "gpt-4-turbo"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-3.5-turbo", "gpt-3.5-turbo"),
        ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("text-embedding-3-small", "text-embedding-3-small"),
        ("text-embedding-ada-002", "text-embedding-ada-002"),
        ("gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview"),
        ("GPT-4o-2024-08-06 ", "gpt-4o"),
        # Snapshots released after this code was written follow the same rule.
        ("gpt-5.1-2026-01-15", "gpt-5.1"),
        ("gpt-6-mini-2027-03-01", "gpt-6-mini"),
        ("o5-20270101", "o5"),
    ],
)
def test_openai_snapshots_map_to_their_family(model: str, family: str) -> None:
    assert model_family(model) == family


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ],
)
def test_anthropic_snapshots_map_to_their_family(model: str, family: str) -> None:
    assert model_family(model, "anthropic") == family


def test_a_version_number_is_not_taken_for_a_date() -> None:
    # "-1300" is no month-day pair, so it must stay part of the name.
    assert model_family("acme-model-1300") == "acme-model-1300"


def test_fine_tune_keeps_base_family_but_needs_its_own_price_key() -> None:
    info = parse_model("ft:gpt-4o-mini-2024-07-18:my-org::9abcDEF")
    assert info.family == "gpt-4o-mini"
    assert info.fine_tuned is True
    assert info.price_family == "ft:gpt-4o-mini"
    assert model_family("ft:gpt-3.5-turbo-0125:my-org:custom:id1") == "gpt-3.5-turbo"


def test_a_plain_model_is_not_a_fine_tune() -> None:
    info = parse_model("gpt-4o-mini-2024-07-18")
    assert info.fine_tuned is False
    assert info.price_family == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("display", "family"),
    [
        ("Claude Sonnet 4.5", "claude-sonnet-4-5"),
        ("Claude Haiku 4.5", "claude-haiku-4-5"),
        ("Claude Opus 4.1", "claude-opus-4-1"),
        ("Claude 3.5 Sonnet", "claude-3-5-sonnet"),
        ("  Claude  Sonnet 4 ", "claude-sonnet-4"),
    ],
)
def test_anthropic_display_names_become_api_families(display: str, family: str) -> None:
    assert display_to_api_family(display) == family


@pytest.mark.parametrize(
    ("family", "cls"),
    [
        ("gpt-5", "flagship"),
        ("gpt-4", "flagship"),
        ("gpt-5-mini", "mini"),
        ("claude-haiku-4-5", "mini"),
        ("gpt-4.1-nano", "nano"),
        ("text-embedding-3-small", "embedding"),
        ("gpt-5.1", None),
    ],
)
def test_capability_class(family: str, cls: str | None) -> None:
    assert capability_class(family) == cls


@pytest.mark.parametrize(
    ("legacy", "successor"),
    [
        ("gpt-4", "gpt-4.1"),
        ("gpt-4-turbo", "gpt-4.1"),
        ("o1", "o3"),
        ("gpt-3.5-turbo", "gpt-4o-mini"),
    ],
)
def test_legacy_models_have_a_successor(legacy: str, successor: str) -> None:
    assert cheaper_alternative(legacy) == successor


def test_current_models_have_no_cheaper_alternative() -> None:
    assert cheaper_alternative("gpt-5-mini") is None
    assert cheaper_alternative("gpt-4o") is None


def test_every_suggested_alternative_is_same_class_and_cheaper_at_list_price() -> None:
    """The hint must never suggest a dearer model: check it against the seeded prices."""
    book = load_price_book()
    legacy_families = [
        "gpt-4",
        "gpt-4-32k",
        "gpt-4-turbo",
        "gpt-4o-2024-05-13",
        "o1",
        "gpt-3.5-turbo",
        "text-embedding-ada-002",
    ]
    for family in legacy_families:
        successor = cheaper_alternative(family)
        assert successor is not None, family
        assert capability_class(successor) == capability_class(family), family
        old = book.price_for("openai", family, "2026-11-27")
        new = book.price_for("openai", successor, "2026-11-27")
        assert old is not None and new is not None, family
        assert new.input_per_1m < old.input_per_1m, family
        assert new.output_per_1m <= old.output_per_1m, family
