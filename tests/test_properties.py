"""Property tests (issue 8, item 8), with hypothesis:

- any sequence of the sample exports, in any order and with repeats, stores what importing
  each once stores;
- a stateful machine of imports, deletions of imports and purges agrees with a small model
  of what the store should hold;
- a fuzz target per importer (usage CSV, cost CSV, Admin API page, and raw bytes) that only
  ever raises the importers' own ``ImportFailure``.

Example counts are kept small so the fast suite stays fast; each runs on every backend.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, text

from analytics import retention
from analytics.access import SYSTEM
from analytics.demo import COST_HEADER_V2, USAGE_HEADER, simulate, write_exports
from analytics.importers import ImportFailure, ParsedFile, parse_sources
from analytics.importers.base import FastPathDeclined
from analytics.ingest import import_sources
from analytics.queries import spend, total_cost
from analytics.usage_columns import STORED, batch_from_rows
from tests.conftest import SHARED_SAMPLES
from tests.test_import_errors import (
    COST_HEADER_V1,
    DAY,
    cost_csv,
    cost_row,
    csv_text,
    epoch,
    usage_csv,
    usage_row,
)

FAST = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FACT_TABLES = ("usage", "cost", "imports", "projects", "api_keys", "audit_log", "settings")


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in FACT_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """The team's sample exports when they are beside this checkout, else simulated ones."""
    folder = SHARED_SAMPLES / "openai-small"
    if folder.is_dir():
        paths = sorted(folder.glob("*.csv"))
    else:
        org = simulate(seed=5, days=20, end=date(2026, 9, 20), scale=0.02)
        paths = write_exports(org, tmp_path_factory.mktemp("exports"), 8, 3)
    return [(p.name, p.read_bytes()) for p in paths]


def _state(engine: Engine) -> tuple:
    by_project = {r.project: r.cost_usd for r in spend(engine, SYSTEM, "project").itertuples()}
    tokens = spend(engine, SYSTEM, "day")[["input_tokens", "output_tokens", "requests"]]
    with engine.connect() as conn:
        rows = tuple(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                     for t in ("usage", "cost"))
    return total_cost(engine, SYSTEM), by_project, tuple(int(v) for v in tokens.sum()), rows


def test_any_sequence_of_the_samples_equals_each_once(
        engine: Engine, samples: list[tuple[str, bytes]]) -> None:
    _clear(engine)
    assert all(r.ok for r in import_sources(engine, samples))
    once = _state(engine)
    assert once[0] > 0 and once[3][0] > 0
    n = len(samples)

    @FAST
    @given(st.lists(st.sampled_from(range(n)), max_size=5)
           .flatmap(lambda extra: st.permutations([*range(n), *extra])))
    def check(order: list[int]) -> None:
        _clear(engine)
        results = import_sources(engine, [samples[i] for i in order])
        assert all(r.ok for r in results)
        assert _state(engine) == once

    check()


# --- stateful: import / delete / purge against a model ------------------------------------------

def _cost_file(days: range, projects: dict[str, Decimal]) -> bytes:
    return cost_csv([cost_row(DAY + timedelta(days=d), str(base + d), project=p)
                     for d in days for p, base in projects.items()])


def _usage_file(days: range, projects: dict[str, int]) -> bytes:
    return usage_csv([usage_row(DAY + timedelta(days=d), project=p,
                                input_tokens=f"{base + d}.0")
                      for d in days for p, base in projects.items()])


# Overlapping downloads whose numbers differ where they overlap (a late revision), so the
# order and the deletions matter.
FILES = {
    "c1.csv": ("cost", range(0, 4), {"proj_a": Decimal(1), "proj_b": Decimal(2)}),
    "c2.csv": ("cost", range(2, 6), {"proj_a": Decimal(10), "proj_b": Decimal(20)}),
    "c3.csv": ("cost", range(1, 3), {"proj_a": Decimal(100)}),
    "u1.csv": ("usage", range(0, 3), {"proj_a": 1000, "proj_b": 2000}),
    "u2.csv": ("usage", range(2, 5), {"proj_b": 50_000}),
}
CONTENT = {name: (_cost_file(days, p) if kind == "cost" else _usage_file(days, p))
           for name, (kind, days, p) in FILES.items()}


@dataclasses.dataclass
class Fact:
    import_id: int
    value: Decimal | int


class StoreModel:
    """What the store should hold: (kind, day, project) -> the fact and the import it came
    from; an import replaces its kind's facts for its days and projects."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, int, str], Fact] = {}
        self.imports: dict[int, str] = {}

    def rows_of(self, import_id: int) -> int:
        return sum(f.import_id == import_id for f in self.facts.values())

    def expected_rerun(self, name: str) -> int | None:
        """The id an import of ``name`` keeps when it is the newest import, fully held."""
        if not self.imports:
            return None
        newest = max(self.imports)
        _, days, projects = FILES[name]
        whole = self.rows_of(newest) == len(days) * len(projects)
        return newest if self.imports[newest] == name and whole else None

    def imported(self, name: str, import_id: int) -> None:
        kind, days, projects = FILES[name]
        self.facts = {k: f for k, f in self.facts.items()
                      if not (k[0] == kind and k[1] in days and k[2] in projects)}
        for d in days:
            for p, base in projects.items():
                self.facts[(kind, d, p)] = Fact(import_id, base + d)
        self.imports[import_id] = name

    def deleted(self, import_id: int) -> None:
        self.facts = {k: f for k, f in self.facts.items() if f.import_id != import_id}
        del self.imports[import_id]

    def purged(self, first_kept: int) -> None:
        self.facts = {k: f for k, f in self.facts.items() if k[1] >= first_kept}

    def total(self, kind: str) -> Decimal | int:
        return sum((f.value for k, f in self.facts.items() if k[0] == kind), 0)


def test_import_delete_reimport_sequences_match_the_model(engine: Engine) -> None:
    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            _clear(engine)
            self.model = StoreModel()

        @rule(name=st.sampled_from(sorted(FILES)))
        def import_file(self, name: str) -> None:
            keeps = self.model.expected_rerun(name)
            [result] = import_sources(engine, [(name, CONTENT[name])])
            assert result.ok, result.error
            if keeps is not None:
                assert result.import_id == keeps and result.new == 0
            else:
                self.model.imported(name, result.import_id)

        @rule(data=st.data())
        def delete_import(self, data: st.DataObject) -> None:
            if not self.model.imports:
                return
            chosen = data.draw(st.sampled_from(sorted(self.model.imports)))
            removed = retention.delete_import(engine, SYSTEM, chosen)
            assert removed.rows == self.model.rows_of(chosen)
            self.model.deleted(chosen)

        @rule(first_kept=st.integers(0, 6))
        def purge(self, first_kept: int) -> None:
            # one month before "today" is DAY + first_kept
            today = DAY + timedelta(days=first_kept)
            today = today.replace(month=today.month + 1)
            retention.purge_older_than(engine, SYSTEM, 1, today)
            self.model.purged(first_kept)

        @invariant()
        def totals_agree(self) -> None:
            assert total_cost(engine, SYSTEM) == self.model.total("cost")
            usage = spend(engine, SYSTEM, "provider")
            stored = int(usage["input_tokens"].sum()) if not usage.empty else 0
            assert stored == self.model.total("usage")

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=12, stateful_step_count=8, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))


# --- fuzz targets: only ImportFailure may escape ------------------------------------------------

def _consume(name: str, data: bytes) -> None:
    """Recognise and read every row of a file, as an import would, refusing only in words."""
    for item in parse_sources([(name, data)]):
        if isinstance(item, ParsedFile):
            try:
                for _ in item.rows:
                    pass
            except ImportFailure:
                pass
        else:
            assert isinstance(item, ImportFailure)
            assert str(item).startswith(name)


CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0", "10.0", "-1", "1e309", "nan", "inf", "True", "FALSE", "1,5",
                     "\u00b2", str(epoch(DAY)), str(epoch(DAY + timedelta(days=1))),
                     "gpt-5, input", "=1+1", "9" * 25, "0.000000000000000000001"]))
# BURNRATE_FUZZ_EXAMPLES=5000 for a long, randomised run (derandomised 60 in the fast suite)
_LONG = int(os.environ.get("BURNRATE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_LONG or 60, deadline=None, derandomize=not _LONG)


@FUZZ
@given(st.lists(st.lists(CELL, min_size=len(USAGE_HEADER), max_size=len(USAGE_HEADER)),
                max_size=4))
def test_fuzz_usage_csv(rows: list[list[str]]) -> None:
    data = csv_text(USAGE_HEADER, rows).encode("utf-8", "surrogatepass")
    _consume("usage.csv", data)
    _fast_reader_agrees("usage.csv", data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.dictionaries(
    st.integers(0, len(USAGE_HEADER) - 1), CELL, max_size=2)), max_size=5))
def test_fuzz_nearly_valid_usage_csv_reads_the_same_fast(
        rows: list[tuple[int, int, dict[int, str]]]) -> None:
    """Real rows with a cell or two changed: the fast reader meets mostly valid files here."""
    built = []
    for day, key, changes in rows:
        row = usage_row(DAY + timedelta(days=day), key=f"key_{key}")
        for column, value in changes.items():
            row[column] = value
        built.append(row)
    _fast_reader_agrees("usage.csv",
                        csv_text(USAGE_HEADER, built).encode("utf-8", "surrogatepass"))


def _fast_reader_agrees(name: str, data: bytes) -> None:
    """The fast columnar reader either declines or yields exactly the row reader's rows; it
    never accepts a file the row reader refuses."""
    [slow] = parse_sources([(name, data)])
    if not isinstance(slow, ParsedFile):
        return  # refused from its header: no reader runs
    try:
        expected = sorted(tuple(row[1:]) for row in slow.rows)
    except ImportFailure:
        expected = None
    [fast] = parse_sources([(name, data)])
    try:
        batches = [batch for batch, _ in fast.columnar()]
    except FastPathDeclined:
        return
    assert expected is not None, "the fast reader accepted a file the row reader refuses"
    moments: dict = {}
    got = sorted(tuple(row) for batch in batches for row in zip(
        *(batch[c].to_pylist() for c in STORED), strict=True))
    want = sorted(tuple(row) for row in zip(*(
        batch_from_rows([(0, *r) for r in expected], moments)[0][c].to_pylist()
        for c in STORED), strict=True)) if expected else []
    assert got == want


@FUZZ
@given(st.sampled_from([COST_HEADER_V1, COST_HEADER_V2]).flatmap(
    lambda header: st.tuples(st.just(header), st.lists(
        st.lists(CELL, min_size=len(header), max_size=len(header)), max_size=4))))
def test_fuzz_cost_csv(case: tuple[list[str], list[list[str]]]) -> None:
    header, rows = case
    _consume("cost.csv", csv_text(header, rows).encode("utf-8", "surrogatepass"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | CELL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10)
RESULT_KEYS = ["object", "input_tokens", "output_tokens", "input_cached_tokens",
               "num_model_requests", "project_id", "model", "batch", "amount", "line_item",
               "quantity", "project_name", "api_key_id"]


@FUZZ
@given(st.lists(st.fixed_dictionaries({
    "start_time": st.sampled_from([epoch(DAY), "x", None]) | JSON,
    "end_time": st.sampled_from([epoch(DAY + timedelta(days=1))]) | JSON,
    "results": st.lists(st.fixed_dictionaries({}, optional={
        **{k: JSON for k in RESULT_KEYS},
        "object": st.sampled_from(["organization.usage.completions.result",
                                   "organization.costs.result"]),
        "amount": st.fixed_dictionaries({"value": JSON}, optional={"currency": JSON})}),
        max_size=3) | JSON}), max_size=3))
def test_fuzz_admin_api_page(buckets: list[dict]) -> None:
    page = {"object": "page", "data": buckets, "has_more": False}
    _consume("page.json", json.dumps(page).encode())


@FUZZ
@given(st.binary(max_size=400) | st.sampled_from([b"start_time,end_time\n", b"{", b"[]"]).flatmap(
    lambda head: st.binary(max_size=200).map(lambda tail: head + tail)))
def test_fuzz_raw_bytes(data: bytes) -> None:
    _consume("file.csv", data)
    _consume("file.json", data)


def test_the_store_path_is_covered_too(engine: Engine, tmp_path: Path) -> None:
    """A fuzz-found kind of text (a control character) refused at import, not just parse."""
    [result] = import_sources(engine, [("u.csv", usage_csv([usage_row(DAY, model="a\x1bb")]))])
    assert not result.ok and "line 2" in result.error and "U+001B" in result.error
    assert total_cost(engine, SYSTEM) == 0 and csv_text(USAGE_HEADER, [])
