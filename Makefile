# Entry points. Each target runs the idempotent ./setup.sh first (seconds when done).
#   make demo   set up, build, run the end-to-end demo (the product's main job)
#   make test   set up, build, run the whole test suite (what CI runs)
SHELL := /bin/bash
ENV := source .deps/env.sh
CARGO_FLAGS := --release --locked --features vision_msgs

.PHONY: setup build test demo clean
setup:
	@./setup.sh

build: setup
	@$(ENV) && cargo build $(CARGO_FLAGS) --bins

test: setup
	@set -e; $(ENV); \
	echo "[test] free disk before the build: $$(df -h --output=avail . | tail -1 | tr -d ' ')"; \
	t0=$$(date +%s); \
	cargo build $(CARGO_FLAGS) --bins --tests; \
	t1=$$(date +%s); echo "[test] build time: $$((t1 - t0)) s"; \
	echo "[test] target folder: $$(du -sh target | cut -f1), free disk: $$(df -h --output=avail . | tail -1 | tr -d ' ')"; \
	status=0; cargo test $(CARGO_FLAGS) -- --test-threads=2 || status=$$?; \
	t2=$$(date +%s); echo "[test] test time: $$((t2 - t1)) s"; \
	exit $$status

demo: build
	@$(ENV) && target/release/altermoma demo

clean:
	rm -rf target
