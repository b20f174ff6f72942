# tianqing-upgrade-controller
#
#   make               build build/tianqing-upgrade-controller
#   make test          install missing packages, build, run unit tests and the
#                      integration/end-to-end tests on a real control plane
#   make test SANITIZE=address,undefined   the same under ASan+UBSan
#   make test VALGRIND=1                   the same with every C test under valgrind
#   make demo          the main job: a whole upgrade on a local control plane
#                      with fake vendor tools (installs and builds what it needs)
#   make bench         design.md's performance targets, written to docs/benchmarks.md
#   make install       the binary and the systemd unit (PREFIX, DESTDIR)
#   make clean
#
# Objects go to build/ (build/san-<list>/ with SANITIZE), dependency files
# are generated next to them.

CC      ?= cc
PKGS    := libcurl libcjson yaml-0.1 openssl libwebsockets libssh
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

CFLAGS  ?= -O2 -g
# -Wno-format-truncation: messages are built with snprintf into fixed
# buffers and cut on purpose; gcc's guesses about that vary with -O.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-format-nonliteral -Wno-format-truncation -fno-common -pthread \
           -I$(O)/gen -Ik8s -Ietcd -Icontroller $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -pthread -lm

comma := ,
O := build
ifneq ($(SANITIZE),)
  O := build/san-$(subst $(comma),-,$(SANITIZE))
  CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
endif

# The version lives in a generated header that is rewritten only when it
# changes, so --version is never stale and nothing else rebuilds needlessly.
$(shell mkdir -p $(O)/gen; v='#define TQU_VERSION "$(VERSION)"'; \
  [ "$$(cat $(O)/gen/tqu_version.h 2>/dev/null)" = "$$v" ] || echo "$$v" > $(O)/gen/tqu_version.h)

K8S_SRC  := $(wildcard k8s/*.c)
ETCD_SRC := $(wildcard etcd/*.c)
ETCD_OBJ := $(ETCD_SRC:%.c=$(O)/%.o)
CTL_SRC  := $(wildcard controller/*/*.c)
K8S_OBJ  := $(K8S_SRC:%.c=$(O)/%.o)
CTL_OBJ  := $(CTL_SRC:%.c=$(O)/%.o) $(O)/controller/upgrade/routes_data.o
CTL_OBJ  += $(O)/controller/tuning/remedies_data.o
BIN      := $(O)/tianqing-upgrade-controller
# kubectl-tianqing, the kubectl plugin (plugin/, on k8s/ only; README "kubectl tianqing")
PLUGIN_SRC := $(filter-out plugin/main.c,$(wildcard plugin/*.c))
PLUGIN_OBJ := $(PLUGIN_SRC:%.c=$(O)/%.o)
PLUGIN_BIN := $(O)/kubectl-tianqing

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
INT_SRC  := $(wildcard tests/integration/test_*.c)
INT_BIN  := $(INT_SRC:tests/integration/%.c=$(O)/tests/%)
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(TOOLS_SRC:tests/tools/%.c=$(O)/tests/tools/%)
TEST_SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(O)/%.o)

# Unit tests route every allocation of our code (and cJSON, via hooks)
# through tests/support/failalloc.c so they can fail the Nth one.
WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=curl_easy_setopt

.PHONY: all test unit integration deps clean demo bench install tests-build
all: $(BIN)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# the route table, built into the binary (see controller/upgrade/routes_data.S)
$(O)/controller/upgrade/routes_data.o: controller/upgrade/routes_data.S routes/routes.yaml
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

# TianqingTuning's etcd key names, built in (see controller/tuning/remedies_data.S)
$(O)/controller/tuning/remedies_data.o: controller/tuning/remedies_data.S remedies/remedies.yaml
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(O)/libk8s.a: $(K8S_OBJ)
	$(AR) rcs $@ $^

# the etcd v3 client (layer 0 beside k8s/; for the TianqingTuning workflow)
$(O)/libetcd.a: $(ETCD_OBJ)
	$(AR) rcs $@ $^

$(O)/libtqu.a: $(CTL_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN): $(O)/controller/main.o $(O)/libtqu.a $(O)/libk8s.a $(O)/libetcd.a
	$(CC) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

$(O)/libkplugin.a: $(PLUGIN_OBJ)
	$(AR) rcs $@ $^

$(PLUGIN_BIN): $(O)/plugin/main.o $(O)/libkplugin.a $(O)/libk8s.a
	$(CC) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

all: $(PLUGIN_BIN)

# the plugin's unit test links the plugin's code, not the controller's
$(O)/tests/test_plugin: tests/unit/test_plugin.c $(TEST_SUPPORT_OBJ) $(O)/libkplugin.a $(O)/libk8s.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/support -Iplugin -MMD -MP $(LDFLAGS) $(WRAP) -o $@ $(filter-out %.h,$^) $(LDLIBS) $(CMOCKA_LIBS)

$(O)/tests/test_%: tests/unit/test_%.c $(TEST_SUPPORT_OBJ) $(O)/libtqu.a $(O)/libk8s.a $(O)/libetcd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/support -MMD -MP $(LDFLAGS) $(WRAP) -o $@ $(filter-out %.h,$^) $(LDLIBS) $(CMOCKA_LIBS)

$(O)/tests/test_%: tests/integration/test_%.c $(TEST_SUPPORT_OBJ) $(O)/libtqu.a $(O)/libk8s.a $(O)/libetcd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/support -MMD -MP $(LDFLAGS) $(WRAP) -o $@ $(filter-out %.h,$^) $(LDLIBS) $(CMOCKA_LIBS)

# Small helpers of the end-to-end scripts (e.g. promcheck: the strict
# Prometheus text parser of the unit tests as a command).
$(O)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -MMD -MP $(LDFLAGS) -o $@ $< $(LDLIBS)

deps:
	@scripts/install-deps.sh

# design.md section 7: no #include up a layer, across workflows, of k8s/*_int.h
# from outside k8s/, unresolved or in a cycle (run by make test).
.PHONY: check-layers
check-layers:
	@scripts/check-layers.sh

# The test binaries are built after deps so a fresh machine has the headers.
test: deps
	@scripts/check-layers.sh
	@$(MAKE) --no-print-directory all tests-build
	@O=$(O) VALGRIND=$(VALGRIND) SANITIZE=$(SANITIZE) tests/run.sh

tests-build: $(UNIT_BIN) $(INT_BIN) $(TOOLS_BIN) $(BIN)
tests-build: $(PLUGIN_BIN)

unit: $(UNIT_BIN)
	@O=$(O) VALGRIND=$(VALGRIND) tests/run.sh --unit-only

demo: deps
	@$(MAKE) --no-print-directory all
	@TQU_BIN=$(CURDIR)/$(BIN) scripts/demo.sh

PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= /etc/systemd/system

# The binary and the systemd unit (manifests/systemd/); the kubeconfig is
# the operator's to write (manifests/README.md). DESTDIR for packaging.
install: $(PLUGIN_BIN)
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tianqing-upgrade-controller
	install -D -m 0755 $(PLUGIN_BIN) $(DESTDIR)$(PREFIX)/bin/kubectl-tianqing
	install -d -m 0755 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' manifests/systemd/tianqing-upgrade-controller.service \
	  > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/tianqing-upgrade-controller.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/tianqing-upgrade-controller.service
	install -d -m 0700 $(DESTDIR)/etc/tianqing-upgrade-controller
	@echo "installed; next: /etc/tianqing-upgrade-controller/kubeconfig (manifests/README.md), then"
	@echo "  systemctl daemon-reload && systemctl enable --now tianqing-upgrade-controller"

BENCH_BIN := $(O)/tests/bench/benchtool $(O)/tests/bench/peakrss
SSH_BENCH_BIN := $(O)/tests/bench/sshcopy

# benchtool: the C half of the benchmarks; links the controller's code
# (tqu_backup_deployments, the k8s client), like the integration tests.
$(O)/tests/bench/benchtool: tests/bench/benchtool.c $(O)/libtqu.a $(O)/libk8s.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# sshcopy: one tqu_ssh_upload, timed (tests/bench/ssh_bench.sh).
$(O)/tests/bench/sshcopy: tests/bench/sshcopy.c $(O)/libtqu.a $(O)/libk8s.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# peakrss: libc only, on purpose: wait4's ru_maxrss of a child counts the
# RSS of the process it was forked from, so the measurer must stay tiny.
$(O)/tests/bench/peakrss: tests/bench/peakrss.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $<

# design.md section 6, measured on a real control plane; writes docs/benchmarks.md
bench: deps
	@[ -z "$(SANITIZE)" ] || { echo "make bench: measure the plain build, not SANITIZE=$(SANITIZE)" >&2; exit 2; }
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@O=$(O) tests/cluster/with-cluster.sh tests/bench/run.sh
	@O=$(O) tests/cluster/with-cluster.sh tests/bench/tuning_bench.sh
	@$(MAKE) --no-print-directory $(SSH_BENCH_BIN)
	@O=$(O) tests/bench/ssh_bench.sh

# design.md section 6 for TianqingTuning alone (drift -> corrected, writes
# when idle); its section of docs/benchmarks.md (make bench runs it too)
.PHONY: bench-tuning
bench-tuning: deps
	@[ -z "$(SANITIZE)" ] || { echo "make bench-tuning: measure the plain build" >&2; exit 2; }
	@$(MAKE) --no-print-directory all
	@O=$(O) tests/cluster/with-cluster.sh tests/bench/tuning_bench.sh

# design.md section 6, the SSH copy against scp (root; its own sshd; not in make test)
.PHONY: bench-ssh
bench-ssh: deps
	@[ -z "$(SANITIZE)" ] || { echo "make bench-ssh: measure the plain build" >&2; exit 2; }
	@$(MAKE) --no-print-directory $(SSH_BENCH_BIN)
	@O=$(O) tests/bench/ssh_bench.sh

clean:
	rm -rf build

-include $(shell find $(O) -name '*.d' 2>/dev/null)
