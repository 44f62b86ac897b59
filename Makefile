# The two commands a newcomer needs: `make run` and `make test`. Each creates .venv and
# installs the pinned requirements on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
PORT   ?= 8501
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-pg e2e bench demo lint audit clean

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -n 2 -m "not e2e and not slow"

# Every store test again on PostgreSQL (each test gets its own fresh database).
test-pg: $(STAMP)
	BURNRATE_TEST_BACKENDS=postgres BURNRATE_TEST_PG_URL=$(PG_URL) \
		$(PY) -m pytest -n 2 -m "store and not e2e"

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not e2e"

# The real app in Debian's Chromium (apt-get install -y chromium).
e2e: $(STAMP)
	@test -x /usr/bin/chromium || { echo "e2e needs /usr/bin/chromium: apt-get install -y chromium"; exit 1; }
	$(PY) -m pytest -m e2e -p no:xdist

bench: $(STAMP)
	$(PY) -m bench.run

demo: $(STAMP)
	$(PY) -m analytics demo

lint: $(STAMP)
	$(PY) -m ruff check analytics pages app.py tests bench

# Fails on a known vulnerability; says so plainly when the service could not be reached.
audit: $(STAMP)
	mkdir -p artifacts
	$(PY) -m pip_audit -r requirements.txt --no-deps --disable-pip --progress-spinner off \
		-f json -o artifacts/pip-audit.json || true
	$(PY) .ci/audit_summary.py artifacts/pip-audit.json

clean:
	rm -rf $(VENV) artifacts
