# The verbs people type. Each installs and builds what it needs first.
#   make lab-up [TOPO=topologies/<name>/<name>.clab.yml]   deploy, wait, print peers
#   make lab-down [TOPO=...]     remove one lab, or (no TOPO) every lab `lab` deployed
#   make images                  build the node images (cached by their inputs)
#   make test                    unit, integration and end-to-end tests, the conformance
#                                smoke subset (needs root)
#   make conformance             the whole conformance matrix (reports in target/lab-report/conformance)
#   make mutants                 deliberately broken speakers (suites/mutants): each must be caught
#   make fuzz                    the speaker's fuzz targets, 10 million executions each
#   make bench                   P1, P2, P4, P6: the speaker against BIRD and FRR (target/bench-report)
SHELL := /bin/bash
CARGO ?= cargo
TOPO ?= topologies/racks/racks.clab.yml
LAB := target/release/lab

.PHONY: deps build images lab-up lab-down test conformance mutants lint bench fuzz

deps:
	@scripts/install-deps.sh

# The whole workspace selected, as `cargo test --workspace` and `lab images` select it:
# one set of dependency features, so nothing compiles twice (see lab/src/images.rs).
build:
	$(CARGO) build --release --quiet --workspace --bin lab

images: deps build
	$(LAB) images

lab-up: images
	$(LAB) up --reconfigure -t $(TOPO)

ifeq ($(origin TOPO),command line)
lab-down: build
	$(LAB) down -t $(TOPO)
else
lab-down: build
	$(LAB) down --all
endif

# One profile (release) for the binaries the tests run and the tests themselves, so
# the dependencies compile once.
test: deps
	$(CARGO) test --release --workspace

# Every case of suites/*.yaml on every cell of the matrix, a deployment per cell,
# JOBS cells up at once (the cases mostly wait on timers: two suit 2 cores). The same
# runner as `LAB_SUITE=full cargo test --release --workspace --test conformance`,
# which takes one cell at a time.
JOBS ?= 2
conformance: images
	$(LAB) test --jobs $(JOBS) --report target/lab-report/conformance

# Every mutant of suites/mutants built into an image of its own and its cases run on
# its cells; reports (mutants.md, mutants.json) in target/lab-report/mutants. Exit 3
# when one survives.
mutants: images
	$(LAB) mutants --jobs $(JOBS)

# The decoder and the daemon's core under libFuzzer, FUZZ_RUNS executions each
# (10 million by default), FUZZ_JOBS processes for the core; the corpus they grow is
# kept in speaker/fuzz/corpus. See scripts/fuzz.sh.
fuzz:
	scripts/fuzz.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Benchmarks: the speaker against BIRD and FRR side by side, interleaved in one run;
# every part writes target/bench-report/pN.json, the last step the report (bench.md,
# bench.json, SVGs). Timings are measured here, not asserted by tests.
bench: deps
	rm -rf target/bench-report
	$(CARGO) bench -p speaker --bench fib_ingest
	$(CARGO) bench -p speaker --bench event_to_update
	$(CARGO) bench -p e2e --bench propagation
	$(CARGO) bench -p e2e --bench scale
	$(CARGO) bench -p e2e --bench lab_up
	$(CARGO) bench -p e2e --bench report
