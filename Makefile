# clawos-security build, test and demo targets. Run `make help`.
GO        ?= go
BIN       := bin
# The seccomp package links libseccomp (Debian: libseccomp-dev), and
# libcontainer loads seccomp filters only when built with the seccomp tag:
# every build, test and lint of this module uses it.
export CGO_ENABLED := 1
export GOFLAGS := -tags=seccomp
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail the run with a bare "context deadline exceeded" at the deadline (a race
# fixed in Go 1.27, go.dev/issue/75804; seen in CI here, no input written).
FUZZTIME  ?= 60000x
# The release 2026.2.2 is served under its module version v0.8.2.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The node installer image (deploy/Containerfile), as deploy/installer.yaml
# names it; PODMAN may carry global flags (--root, --runroot).
IMAGE     ?= localhost/clawos/clawos-security-installer:0.1.0
PODMAN    ?= podman

.PHONY: install uninstall all build test test-go test-vm vm-kernel crictl runc-libcontainer fuzz lint bench demo baselines clean help image cover

all: build

help:
	@echo "make build      build every program into $(BIN)/"
	@echo "make test       lint, run every test (the kernel tests and the VM matrix included) and a short fuzz run"
	@echo "make test-go    the Go tests alone (CLAWOS_INTEGRATION=1: kernel, sandbox, engine and VM tests)"
	@echo "make test-vm    the VM matrix: Debian's 6.1 and 6.12 kernels under qemu: AppArmor, cgroup v2, no Landlock, no ia32, aarch64"
	@echo "make vm-kernel  fetch the VM matrix's kernels and aarch64 guest programs into $(VM_DIR)/"
	@echo "make crictl     build crictl for the CRI tests into $(CRICTL_DIR)/"
	@echo "make runc-libcontainer  build runc of the libcontainer clawos-run embeds (BenchmarkStart's second anchor) into /var/cache/clawos-test/"
	@echo "make fuzz       fuzz clawos-init's parsers, the wrapper front's and clawos-poststop's (ASan, UBSan), and the whitelist translator"
	@echo "make demo       run the corrected reference whitelist against real calls and print the verdicts"
	@echo "make bench      run the benchmarks"
	@echo "make cover      unit-test coverage of the libraries and the programs' logic, per package and in total ($(BIN)/cover.out)"
	@echo "make lint       gofmt, go vet, staticcheck, no build outputs tracked"
	@echo "make baselines  re-measure the start, tokio and runtime baselines (needs strace, qemu-user-static, cargo)"
	@echo "make image      build the node installer image $(IMAGE) FROM scratch with podman (deploy/Containerfile)"
	@echo "make install    install the programs, their manual pages and bash completions, podman's hooks.d files and /etc/clawos (PREFIX, DESTDIR, HOOKS_DIR)"
	@echo "make uninstall  remove what install installed, except /etc/clawos (the administrator's configuration and whitelists)"
	@echo "make clean      remove $(BIN)/ and .cache/"
	@echo "make help       this list"

# The hook, the runtime wrapper and clawos-policy (which validates for the
# hook on a plan-cache miss) run in an engine's environment and on nodes:
# static, so that LD_PRELOAD and friends cannot reach them and no library
# is needed on the node.
STATIC := -buildmode=pie -tags=seccomp,netgo,osusergo -ldflags '-linkmode external -extldflags "-static-pie"'

build: $(BIN)/clawos-probe $(BIN)/clawos-init $(BIN)/clawos-runc $(BIN)/clawos-poststop $(BIN)/clawos-wait $(BIN)/clawos-pause $(BIN)/clawos-attack-exec $(BIN)/clawos-attack-tfo $(BIN)/init-resolve
	$(GO) build -o $(BIN)/ ./cmd/clawos-run
	$(GO) build $(STATIC) -o $(BIN)/ ./cmd/clawos-hook ./cmd/clawos-policy ./cmd/clawos-node
	$(GO) build -o $(BIN)/clawos-demo ./test/agents/demo

# Static C programs: they run inside sandboxes that may have no libc.
$(BIN)/clawos-probe: test/probe/probe.c
	@mkdir -p $(BIN)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BIN)/clawos-init: cmd/clawos-init/init.c
	@mkdir -p $(BIN)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

# The wrapper's front and clawos-wait are linked with musl: a static glibc
# program spends most of its start in glibc's own set-up (the CPU's
# features through cpuid, which traps in a VM, then IRELATIVE relocations):
# 0.58-0.69 -> 0.21-0.38 ms per exec here, paid at every runc call of the
# wrapper's handler (four per `ctr run --rm`) and at every hand-off.
# clawos-init stays on glibc: its calls are measured into the container
# stage's baseline (docs/baselines.md), on x86_64 and in the aarch64 guest.
# Their sanitized builds and fuzzers below use $(CC) and glibc.
MUSL_CC ?= musl-gcc
MUSL_CHECK = @command -v $(MUSL_CC) >/dev/null || { echo "$(MUSL_CC) not found: install musl-tools (.ci/setup), or make MUSL_CC=gcc"; exit 1; }

# The runtime wrapper's front: it runs for every runc call of its handler
# and routes it to runc or to `clawos-hook runc-wrap`.
$(BIN)/clawos-runc: cmd/clawos-runc/front.c
	@mkdir -p $(BIN)
	$(MUSL_CHECK)
	$(MUSL_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

# The poststop hook's quick path, in front of clawos-hook: it runs at every
# confined container's stop.
$(BIN)/clawos-poststop: cmd/clawos-poststop/poststop.c
	@mkdir -p $(BIN)
	$(MUSL_CHECK)
	$(MUSL_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BIN)/clawos-poststop-san: cmd/clawos-poststop/poststop.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -o $@ $<

# What clawos-run becomes while a long-running agent runs (sandbox.HandOff).
$(BIN)/clawos-wait: cmd/clawos-wait/wait.c
	@mkdir -p $(BIN)
	$(MUSL_CHECK)
	$(MUSL_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BIN)/clawos-wait-san: cmd/clawos-wait/wait.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -o $@ $<

# clawos-init's parsers under AddressSanitizer and UBSan: the fuzz driver
# (make fuzz), and a sanitized clawos-init that one test run puts in real
# sandboxes (TestInitSanitized). Dynamic: the sanitizers' runtimes are not
# available for static binaries.
SANITIZE := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror
$(BIN)/clawos-init-san: cmd/clawos-init/init.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -o $@ $<

$(BIN)/init-resolve: test/fuzz/init_resolve.c cmd/clawos-init/init.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -Wno-unused-function -o $@ $<

$(BIN)/init-fuzz: test/fuzz/init_fuzz.c test/fuzz/rng.h cmd/clawos-init/init.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -Wno-unused-function -o $@ $<

$(BIN)/clawos-runc-san: cmd/clawos-runc/front.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -o $@ $<

$(BIN)/runc-fuzz: test/fuzz/runc_fuzz.c test/fuzz/rng.h cmd/clawos-runc/front.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -Wno-unused-function -o $@ $<

$(BIN)/poststop-fuzz: test/fuzz/poststop_fuzz.c test/fuzz/rng.h cmd/clawos-poststop/poststop.c
	@mkdir -p $(BIN)
	$(CC) $(SANITIZE) -Wno-unused-function -o $@ $<

# The attack programs of test/attacks/ (dynamic where the attack needs it).
$(BIN)/clawos-attack-tfo: test/attacks/tfo.c
	@mkdir -p $(BIN)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BIN)/clawos-attack-exec: test/attacks/exec.c
	@mkdir -p $(BIN)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

$(BIN)/clawos-pause: test/pause/pause.c
	@mkdir -p $(BIN)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

test: lint test-go fuzz

# Every test, then the libraries again under the race detector (their
# goroutines: the launcher thread, signal forwarding, the guard beside the
# start); the integration tests in test/ drive the programs, which it
# cannot see.
test-go: build $(BIN)/clawos-init-san $(BIN)/clawos-wait-san $(BIN)/clawos-runc-san $(BIN)/clawos-poststop-san vm-kernel crictl
	CLAWOS_INTEGRATION=1 $(GO) test -count=1 -timeout 45m ./...
	CLAWOS_INTEGRATION=1 $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test$$)

# Unit tests only (no kernel, engine or VM tests): what the launcher's,
# the hook's and the libraries' logic is covered by without a sandbox.
cover: build
	@mkdir -p $(BIN)
	$(GO) test -count=1 -coverprofile=$(BIN)/cover.out $$($(GO) list ./... | grep -v /test$$) | sed 's/^ok *//'
	$(GO) tool cover -func=$(BIN)/cover.out | tail -1

image: build
	$(PODMAN) build -f deploy/Containerfile -t $(IMAGE) .

# crictl, the CRI client of the Kubernetes tests (test/cri_test.go), built
# once from the Go module proxy (about a minute here) into a cache that
# outlives the checkout.
CRICTL_VERSION := v1.37.0
CRICTL_DIR     := /var/cache/clawos-test/$(CRICTL_VERSION)
crictl: $(CRICTL_DIR)/crictl

$(CRICTL_DIR)/crictl:
	@mkdir -p $(CRICTL_DIR)
	GOBIN=$(CRICTL_DIR) GOFLAGS=-mod=mod $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)

# runc of the libcontainer version clawos-run embeds, built from the Go
# module proxy into a cache outside the checkout: BenchmarkStart's second
# anchor (Debian's runc is 1.1, an older libcontainer).
RUNC_LC_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/opencontainers/runc)
RUNC_LC_DIR     = /var/cache/clawos-test/runc-$(RUNC_LC_VERSION)
runc-libcontainer:
	@test -x $(RUNC_LC_DIR)/runc || (mkdir -p $(RUNC_LC_DIR) && GOBIN=$(RUNC_LC_DIR) GOFLAGS=-mod=mod $(GO) install -tags seccomp github.com/opencontainers/runc@$(RUNC_LC_VERSION))

# The kernels the VM matrix boots: Debian's current linux-image-amd64 (6.1
# LTS, AppArmor built in and enabled), bookworm-backports' (6.12: ia32
# emulation can be switched off at boot) and linux-image-arm64 with the
# arm64 guest's busybox and runc; only what boots is kept (test/vm/fetch.sh).
VM_DIR := .cache/vm
vm-kernel: $(VM_DIR)/vmlinuz $(VM_DIR)/backports/vmlinuz $(VM_DIR)/arm64/vmlinuz

$(VM_DIR)/vmlinuz:
	test/vm/fetch.sh amd64 $(VM_DIR)

$(VM_DIR)/backports/vmlinuz:
	test/vm/fetch.sh amd64 $(VM_DIR)/backports bookworm-backports

$(VM_DIR)/arm64/vmlinuz:
	test/vm/fetch.sh arm64 $(VM_DIR)/arm64

test-vm: build vm-kernel
	CLAWOS_INTEGRATION=1 $(GO) test -count=1 -run TestVM -v ./test

# Installs the programs, podman's hooks.d files, the runtime wrapper's
# configuration and the trusted whitelist directory. PREFIX and DESTDIR as
# usual; HOOKS_DIR is where podman and CRI-O look for hooks.
PREFIX    ?= /usr/local
HOOKS_DIR ?= /usr/share/containers/oci/hooks.d
# The programs whose manual page and bash completion install generates from
# their flags (--generate man|bash).
DOCUMENTED := clawos-run clawos-policy clawos-hook clawos-node

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(HOOKS_DIR) $(DESTDIR)/etc/clawos/whitelists
	install -m 0755 $(BIN)/clawos-run $(BIN)/clawos-policy $(BIN)/clawos-hook $(BIN)/clawos-runc $(BIN)/clawos-poststop $(BIN)/clawos-init $(BIN)/clawos-wait $(BIN)/clawos-node $(DESTDIR)$(PREFIX)/bin/
	for f in hook/hooks.d/*.json; do \
		sed 's#/usr/local/bin/clawos-hook#$(PREFIX)/bin/clawos-hook#' $$f > $(DESTDIR)$(HOOKS_DIR)/$$(basename $$f); done
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	for p in $(DOCUMENTED); do \
		$(BIN)/$$p --generate man > $(DESTDIR)$(PREFIX)/share/man/man1/$$p.1 && \
		$(BIN)/$$p --generate bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$p || exit 1; done
	test -e $(DESTDIR)/etc/clawos/runtime.json || \
		sed -e 's#/usr/local/bin#$(PREFIX)/bin#' -e '/"cri": true/d' deploy/runtime.json > $(DESTDIR)/etc/clawos/runtime.json

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,clawos-run clawos-policy clawos-hook clawos-runc clawos-poststop clawos-init clawos-wait clawos-node)
	rm -f $(foreach p,$(DOCUMENTED),$(DESTDIR)$(PREFIX)/share/man/man1/$(p).1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$(p))
	rm -f $(addprefix $(DESTDIR)$(HOOKS_DIR)/,$(notdir $(wildcard hook/hooks.d/*.json)))

# clawos-init's ELF and #! reader and filter decoder, a fixed count of
# deterministic mutations of real programs and scripts, and the runtime
# wrapper front's configuration reader and router, under ASan and UBSan.
FUZZ_INIT_COUNT ?= 300000
FUZZ_RUNC_COUNT ?= 2000000
FUZZ_POSTSTOP_COUNT ?= 3000000
fuzz: $(BIN)/init-fuzz $(BIN)/runc-fuzz $(BIN)/poststop-fuzz $(BIN)/clawos-probe
	$(BIN)/init-fuzz $(FUZZ_INIT_COUNT) $(BIN)/clawos-probe /usr/bin/true test/fuzz/seeds/*
	$(BIN)/runc-fuzz $(FUZZ_RUNC_COUNT) deploy/runtime.json
	$(BIN)/poststop-fuzz $(FUZZ_POSTSTOP_COUNT)
	$(GO) test ./translate -run '^$$' -fuzz FuzzValidateTranslate -fuzztime $(FUZZTIME)
	$(GO) test ./translate -run '^$$' -fuzz FuzzDecodeKnown -fuzztime $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	@bad=$$(git ls-files -z | xargs -0 -r sh -c 'for f; do [ -f "$$f" ] || continue; \
		if [ $$(stat -c %s "$$f") -gt 1048576 ] || [ "$$(head -c4 "$$f" | od -An -c | tr -d " ")" = "177ELF" ]; then echo "$$f"; fi; done' sh); \
		if [ -n "$$bad" ]; then echo "build outputs or files over 1 MiB are tracked: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Microbenchmarks with Go's default time; the sandbox, engine, CRI and learn
# benchmarks (test/) with BENCH_RUNS alternating runs per mode, each a
# process and a container: medians of a fixed count, not of a time budget.
BENCH_RUNS ?= 15
bench: build crictl runc-libcontainer
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /test$$)
	CLAWOS_INTEGRATION=1 $(GO) test -run '^$$' -bench . -benchtime $(BENCH_RUNS)x -timeout 30m ./test

demo: build
	$(BIN)/clawos-policy validate examples/ironclaw.whitelist.json
	$(BIN)/clawos-demo --whitelist examples/ironclaw.whitelist.json --probe $(BIN)/clawos-probe --run $(BIN)/clawos-run

baselines:
	test/baseline/generate.sh

clean:
	rm -rf $(BIN) .cache
