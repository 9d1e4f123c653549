# SPDX-License-Identifier: GPL-2.0-or-later
# xbd: GNU Make build.  `make` builds build/xbd and build/xbdsh;
# `make check` rebuilds everything under ASan+UBSan in build/asan and
# runs every test; `make check-xen` runs the real-Xen tier; `make soak`
# the kill -9 soak (tests/soak/, not part of check).

CC      ?= gcc
PKGS    := fuse3 xenstore xengnttab xenevtchn xencontrol json-c blkid libcrypto libewf zlib libseccomp ext2fs libntfs-3g libfsxfs libbfio
WARN    := -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes \
           -Wmissing-declarations -Werror
CFLAGS  ?= -O2 -g
XBD_VERSION := 0.1.0
# pkg-config runs once, and only when something is compiled or linked:
# `make demo` and `make check` install the -dev packages before that,
# so a fresh machine sees no "Package fuse3 was not found" first.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)
XCFLAGS  = -std=gnu11 -DXBD_VERSION=\"$(XBD_VERSION)\" $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
           -Iinclude -I. $(PKG_CFLAGS)
LIBS     = $(PKG_LIBS) -lreadline -lpthread -lrt

B       ?= build
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all

LIB_SRC   := $(sort $(wildcard src/*.c ring/*.c fuse/*.c))
# The simulated hypervisor: test infrastructure and the demo's platform,
# a library of its own that needs libxbd (never the reverse).
SIM_SRC   := $(sort $(wildcard src/sim/*.c))
XBD_SRC   := cli/xbd.c cli/common.c cli/daemon.c $(sort $(wildcard cli/cmd_*.c))
XBDSH_SRC := cli/xbdsh.c cli/common.c $(sort $(wildcard cli/sh_*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TESTLIB   := $(sort $(wildcard tests/lib/*.c))
TEST_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(TEST_SRC))
# tests/fuzz/: one libFuzzer harness per parser of hostile bytes.  The
# test build links each with a replay main (test_fuzz_<name> runs its
# corpus once); `make fuzz` links them with libFuzzer (clang).
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
TEST_BINS  += $(patsubst %,$(B)/tests/test_fuzz_%,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all

LIB_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC))
SIM_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(SIM_SRC))
DEPS      := $(patsubst %.c,$(B)/obj/%.d,$(LIB_SRC) $(SIM_SRC) $(XBD_SRC) $(XBDSH_SRC) $(TEST_SRC) $(TESTLIB) \
	       $(FUZZ_SRC) tests/fuzz/replay.c)
# libxbdsim.a first: its references into libxbd resolve from the archive after it.
LIBS_XBD  := $(B)/libxbdsim.a $(B)/libxbd.a

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/xbd
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

.PHONY: all check check-xen demo bench clean install uninstall deb tests \
	check-sim-isolation fuzz fuzzers soak
all: check-sim-isolation $(B)/xbd $(B)/xbdsh

# Product code never includes the simulator (only the hook
# xbd_platform_set_sim connects them): fail the build if it does.
SIM_HDRS    := $(notdir $(wildcard src/sim/*.h))
PRODUCT_SRC := $(wildcard src/*.c src/*.h fuse/*.c fuse/*.h ring/*.c ring/*.h include/xbd/*.h)
empty :=
space := $(empty) $(empty)
check-sim-isolation:
	@! grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]*/)?(sim/|($(subst .,\.,$(subst $(space),|,$(SIM_HDRS))))[">])' \
		$(PRODUCT_SRC) || { echo "error: product code includes the simulator (src/sim/)" >&2; exit 1; }
	@! grep -nE '^[[:space:]]*#[[:space:]]*include.*platform_priv\.h' $(filter-out src/platform%,$(PRODUCT_SRC)) cli/*.c cli/*.h || \
		{ echo "error: only the platform's implementations see its ops table (src/platform_priv.h)" >&2; exit 1; }

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libxbd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libxbdsim.a: $(SIM_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/xbd: $(patsubst %.c,$(B)/obj/%.o,$(XBD_SRC)) $(LIBS_XBD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/xbdsh: $(patsubst %.c,$(B)/obj/%.o,$(XBDSH_SRC)) $(LIBS_XBD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# tests/lib/: the code the unit tests share, one archive that each test
# binary takes what it uses from.
$(B)/libxbdtest.a: $(patsubst %.c,$(B)/obj/%.o,$(TESTLIB))
	@rm -f $@
	ar rcs $@ $^

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libxbdtest.a $(LIBS_XBD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/test_fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay.o \
		$(B)/libxbdtest.a $(LIBS_XBD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

tests: all check-sim-isolation $(TEST_BINS)

# The libFuzzer binaries (B=build/fuzz, CC=clang: see `fuzz`).
$(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/libxbdtest.a $(LIBS_XBD)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzzers: $(patsubst %,$(B)/fuzz_%,$(FUZZ_NAMES))

# Builds the harnesses with clang in build/fuzz and fuzzes each for
# FUZZ_SECONDS (FUZZ_TARGETS="ptable ring" picks some); new inputs go
# to build/fuzz/corpus/, crashes to build/fuzz/artifacts/.
fuzz:
	@command -v clang >/dev/null || { echo "fuzz: clang is missing (tests/install-deps.sh installs it)" >&2; exit 1; }
	$(MAKE) B=build/fuzz CC=clang CFLAGS="-O1 -g $(FUZZ_SAN)" fuzzers
	tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Keep the objects of the test programs: without this, make deletes them
# as intermediate files and the next make compiles them all again.
.SECONDARY:

# The test build: same sources, sanitizers on, its own directory.
# Installs missing build and test packages first (as root; a no-op when
# all are there), so `make check` works as written on a fresh machine.
check:
	bash tests/install-deps.sh
	$(MAKE) B=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" tests
	tests/run-tests.sh build/asan

# Both entries of the real-Xen matrix (XEN=4.17 or XEN=4.20 picks one).
XEN ?= 4.17 4.20
check-xen: all
	@rc=0; for x in $(XEN); do \
		echo "== real-Xen tier: Xen $$x"; \
		XEN=$$x tests/xen/run.sh $(B) || rc=1; \
	done; exit $$rc

# The kill -9 soak on the sim, in the sanitizer build: SOAK_SECONDS
# (default 600) long, SOAK_SEED repeats its choices (tests/soak/README.md).
soak:
	bash tests/install-deps.sh
	$(MAKE) B=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all
	tests/soak/run.sh build/asan

demo:
	tests/demo.sh

bench: all
	tests/bench/run.sh $(B)

# Programs, man pages, bash completion, the systemd unit (its ExecStart
# pointed at SBINDIR) and the documents.  DESTDIR stages, as packagers do.
install: all
	install -D -m 0755 $(B)/xbd $(DESTDIR)$(SBINDIR)/xbd
	install -D -m 0755 $(B)/xbdsh $(DESTDIR)$(SBINDIR)/xbdsh
	install -D -m 0644 packaging/man/xbd.8 $(DESTDIR)$(MANDIR)/man8/xbd.8
	install -D -m 0644 packaging/man/xbdsh.8 $(DESTDIR)$(MANDIR)/man8/xbdsh.8
	install -D -m 0644 packaging/completion/xbd $(DESTDIR)$(BASHCOMPDIR)/xbd
	install -D -m 0644 packaging/completion/xbdsh $(DESTDIR)$(BASHCOMPDIR)/xbdsh
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|/usr/sbin/xbd |$(SBINDIR)/xbd |' packaging/systemd/xbd-serve@.service \
		>'$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-serve@.service'
	chmod 0644 '$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-serve@.service'
	install -D -m 0755 packaging/prometheus/xbd-prom $(DESTDIR)$(SBINDIR)/xbd-prom
	sed 's|/usr/sbin/xbd-prom |$(SBINDIR)/xbd-prom |' packaging/systemd/xbd-prom.service \
		>'$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-prom.service'
	chmod 0644 '$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-prom.service'
	install -m 0644 packaging/systemd/xbd-prom.timer $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -D -m 0644 -t $(DESTDIR)$(DOCDIR) README $(wildcard packaging/*.md)
	install -D -m 0644 packaging/systemd/serve.conf.example \
		$(DESTDIR)$(DOCDIR)/examples/serve.conf.example
	install -D -m 0644 packaging/prometheus/xbd-alerts.yml \
		$(DESTDIR)$(DOCDIR)/examples/xbd-alerts.yml

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/xbd $(DESTDIR)$(SBINDIR)/xbdsh \
	      $(DESTDIR)$(MANDIR)/man8/xbd.8 $(DESTDIR)$(MANDIR)/man8/xbdsh.8 \
	      $(DESTDIR)$(BASHCOMPDIR)/xbd $(DESTDIR)$(BASHCOMPDIR)/xbdsh \
	      '$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-serve@.service' \
	      $(DESTDIR)$(SBINDIR)/xbd-prom \
	      '$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-prom.service' \
	      '$(DESTDIR)$(SYSTEMDUNITDIR)/xbd-prom.timer'
	rm -rf $(DESTDIR)$(DOCDIR)

# The Debian package, built by dpkg-buildpackage in a temporary copy of
# the tree (which stays clean); the .deb lands in DEBDIR.
DEBDIR ?= build/deb
deb:
	packaging/build-deb.sh $(DEBDIR)

clean:
	rm -rf build

-include $(DEPS)
