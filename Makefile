# Sluice — build, generate, verify and test.
#
# Everything the tests need (control-plane binaries, Prometheus, controller-gen,
# helm) is built from the Go module proxy into $(SLUICE_CACHE)/bin once and
# reused; see devenv/tools/build.sh.

SHELL := /usr/bin/env bash
SLUICE_CACHE ?= $(HOME)/.cache/sluice
export SLUICE_CACHE
TOOLS_BIN := $(SLUICE_CACHE)/bin
export SLUICE_BIN_DIR := $(TOOLS_BIN)
CONTROLLER_GEN := $(TOOLS_BIN)/controller-gen
HELM := $(TOOLS_BIN)/helm
# Folders only make generate writes (new files there must be committed too).
GENERATED_DIRS := deploy/crds deploy/rbac deploy/webhook deploy/helm/sluice/crds deploy/helm/sluice/dashboards

# e2e packages carry the e2e build tag; they need the control-plane binaries.
E2E_FLAGS ?= -count=1 -timeout=40m
# Every test suite runs through noskip: go test's usual output, and a
# failure for any skipped test (a skip would otherwise pass unseen).
NOSKIP := go run ./devenv/noskip
PLAYGROUND_DIR ?= $(SLUICE_CACHE)/playground
# make bench: releases per transition benchmark, bad canaries per
# time-to-stable variant.
BENCH_RELEASES ?= 20
BENCH_FAILURES ?= 5
# make bench-fleet: the fleet sizes (Rollouts on 10-replica Deployments),
# one control plane each; results and plot in bin/bench-fleet.{jsonl,png}
FLEET_SIZES ?= 100 300 1000
FLEET_OUT ?= $(CURDIR)/bin/bench-fleet.jsonl
# make chaos writes its report here too (docs/reliability.md records one).
CHAOS_REPORT ?= $(CURDIR)/bin/chaos-report.txt

# The fuzz targets, as package:Target (see docs/reliability.md). make fuzz
# runs each for FUZZTIME, one after the other; make fuzz-short, part of
# make test, for FUZZTIME_SHORT executions. That is a count, not a
# duration: when a -fuzztime duration ends, Go 1.26's fuzzing coordinator
# can fail a target that found nothing with "context deadline exceeded" (a
# race in internal/fuzz, go.dev/issue/75804, fixed in Go 1.27), and a count
# sets no deadline. go test -fuzz takes one target of one package at a
# time, and -run must select it too, or the package's other tests and
# targets run first.
FUZZ_TARGETS := \
	./analysis/condition:FuzzCondition \
	./analysis/query:FuzzRender \
	./analysis/admission:FuzzAdmissionAgreesWithRun \
	./analysis/admission:FuzzTemplateValidatorHandle \
	./traffic/script:FuzzRun \
	./traffic/script:FuzzObjectRoundTrip \
	./api/rollouts/v1alpha1:FuzzRoundTripV1beta1 \
	./api/rollouts/v1alpha1:FuzzRoundTripV1alpha1 \
	./rollout/admission:FuzzValidatorHandle \
	./rollout/admission:FuzzValidateSpec \
	./workload/freeze:FuzzFreezeHandle \
	./rollout:FuzzDecide
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 300x
# Minimising an interesting input can take the whole run: bound it.
FUZZMINIMIZETIME ?= 10s

.PHONY: all build image generate verify helm test unit fuzz fuzz-short fuzz-run e2e tools demo demo-down bench bench-fleet chaos clean

all: build

## build: compile sluice-controller and sluice-playground into bin/
build:
	go build -o bin/ ./cmd/...

## image: the sluice-controller image, FROM scratch, without Docker
## (deploy/image): an OCI layout and a docker-load tarball in $(IMAGE_DIR),
## tagged with the chart's appVersion; nothing to do when the last build is
## of the same clean commit (IMAGE_FLAGS=-force builds anyway)
IMAGE_DIR ?= bin/image
IMAGE_FLAGS ?=
image:
	go run ./deploy/image/build -out $(IMAGE_DIR) $(IMAGE_FLAGS)

## tools: build the control plane, kwok, Prometheus, controller-gen and helm (cached)
tools:
	devenv/tools/build.sh

$(CONTROLLER_GEN):
	devenv/tools/build.sh controller-gen

$(HELM):
	devenv/tools/build.sh helm

## generate: deepcopy, CRDs, RBAC and webhook manifests into deploy/, the
## Helm chart's copies of them (and of deploy/grafana/sluice.json), and the
## Argo CD and Karmada manifests from their Lua scripts
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=false paths=./api/... output:crd:artifacts:config=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=sluice-controller paths=./... output:rbac:artifacts:config=deploy/rbac
	$(CONTROLLER_GEN) webhook paths=./... output:webhook:artifacts:config=deploy/webhook
	gofmt -w api
	go run ./deploy/helm/chartsync
	go run ./deploy/gitopssync

## verify: fail when generated files are stale or gofmt/go vet complain
verify: generate
	@git diff --exit-code -- api deploy || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED_DIRS))" || { git status --short --untracked-files=all -- $(GENERATED_DIRS); echo "generated files are not committed: run 'make generate' and commit"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...
	go vet -tags e2e ./e2e/...

## helm: lint the chart and render it with default and non-default values
helm: $(HELM)
	deploy/helm/check.sh $(HELM)

## unit: unit tests: no cluster, no Prometheus, no built tool (what needs
## one is an e2e test), so they depend on nothing; no test may skip
unit:
	set -o pipefail; go test -count=1 -json ./... | $(NOSKIP)

## fuzz: every fuzz target for FUZZTIME (60s) each; a failing input is
## written to the package's testdata/fuzz/<Target>/ (docs/reliability.md)
fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME) FUZZ_MINIMIZE=$(FUZZMINIMIZETIME)

## fuzz-short: every fuzz target for FUZZTIME_SHORT (300 executions) each
fuzz-short:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME_SHORT) FUZZ_MINIMIZE=1s

fuzz-run:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZ_FOR)"; \
		go test -run "^$$name\$$" -fuzz "^$$name\$$" -fuzztime $(FUZZ_FOR) -fuzzminimizetime $(FUZZ_MINIMIZE) $$pkg; \
	done

## e2e: end-to-end tests against a real local control plane (the chaos
## suite in its short version); no test may skip
e2e: tools
	set -o pipefail; SLUICE_CHAOS=short go test -tags e2e $(E2E_FLAGS) -json ./e2e/... | $(NOSKIP)

## test: verify, the chart, unit (with the fuzz seed corpora), a short
## run of every fuzz target, and e2e — what CI runs
test: verify helm unit fuzz-short e2e

## bench: benchmarks, which report and never fail on a slow machine: condition
## evaluation; then, on a local control plane with Prometheus, the controller's
## overhead per step transition and API writes per release, and the time from a
## canary going bad to its traffic back on stable (e2e/bench)
bench: tools
	go test -run '^$$' -bench . -benchmem -count=1 ./analysis/condition
	go test -tags e2e -run '^$$' -bench Transitions -benchtime $(BENCH_RELEASES)x -count=1 -timeout 30m ./e2e/bench
	go test -tags e2e -run '^$$' -bench TimeToStable -benchtime $(BENCH_FAILURES)x -count=1 -timeout 30m ./e2e/bench
	go test -tags e2e -run '^$$' -bench ReleaseVsNative -benchtime $(BENCH_RELEASES)x -count=1 -timeout 30m ./e2e/bench

## bench-fleet: the fleet benchmark at each of FLEET_SIZES (docs/benchmarks.md):
## N Rollouts released at once, against native rolling updates; transition
## p50/p99, the manager's RSS and CPU, API requests; appends to FLEET_OUT and
## draws its .png (SLUICE_BENCH_FLEET_* and SLUICE_BENCH_MANAGER_ARGS tune it)
bench-fleet: tools
	@mkdir -p $(dir $(FLEET_OUT)); rm -f $(FLEET_OUT)
	for n in $(FLEET_SIZES); do \
		SLUICE_BENCH_FLEET=$$n SLUICE_BENCH_FLEET_OUT=$(FLEET_OUT) \
			go test -tags e2e -run '^$$' -bench Fleet -benchtime 1x -count=1 -timeout 120m ./e2e/bench || exit 1; \
	done

## chaos: the long chaos run (e2e/chaos, about half an hour): releases of
## every workload kind at once under manager SIGKILLs and failovers, API
## server restarts, another writer and Prometheus faults, every one checked
## by the invariant checker; prints the report (docs/reliability.md)
chaos: tools
	@mkdir -p $(dir $(CHAOS_REPORT)); rm -f $(CHAOS_REPORT)
	set -o pipefail; SLUICE_CHAOS=full SLUICE_CHAOS_REPORT=$(CHAOS_REPORT) \
		go test -tags e2e -count=1 -timeout 90m -run '^TestChaos$$' -json ./e2e/chaos | $(NOSKIP); \
		status=$$?; if [ -f $(CHAOS_REPORT) ]; then echo; cat $(CHAOS_REPORT); fi; exit $$status

## demo: a local control plane with Sluice, and a release of the guide's example
demo: tools build
	bin/sluice-playground demo --dir $(PLAYGROUND_DIR)

demo-down:
	bin/sluice-playground down --dir $(PLAYGROUND_DIR)

clean:
	rm -rf bin
