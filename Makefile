# xbd: GNU Make build.  `make` builds build/xbd and build/xbdsh;
# `make check` rebuilds everything under ASan+UBSan in build/asan and
# runs every test; `make check-xen` runs the real-Xen tier.

CC      ?= gcc
PKGS    := fuse3 xenstore xengnttab xenevtchn xencontrol json-c blkid
WARN    := -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes \
           -Wmissing-declarations -Werror
CFLAGS  ?= -O2 -g
XBD_VERSION := 0.1.0
XCFLAGS := -std=gnu11 -DXBD_VERSION=\"$(XBD_VERSION)\" $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
           -Iinclude -I. $(shell pkg-config --cflags $(PKGS))
LIBS    := $(shell pkg-config --libs $(PKGS)) -lreadline -lpthread -lrt

B       ?= build
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all

LIB_SRC   := $(sort $(wildcard src/*.c ring/*.c fuse/*.c))
XBD_SRC   := cli/xbd.c $(sort $(wildcard cli/cmd_*.c))
XBDSH_SRC := cli/xbdsh.c $(sort $(wildcard cli/sh_*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TESTLIB   := $(sort $(wildcard tests/unit/lib_*.c))
TESTS     := $(patsubst tests/unit/%.c,$(B)/tests/%,$(TEST_SRC))

LIB_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC))
DEPS      := $(patsubst %.c,$(B)/obj/%.d,$(LIB_SRC) $(XBD_SRC) $(XBDSH_SRC) $(TEST_SRC) $(TESTLIB))

PREFIX  ?= /usr/local

.PHONY: all check check-xen demo bench clean install tests
all: $(B)/xbd $(B)/xbdsh

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libxbd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/xbd: $(patsubst %.c,$(B)/obj/%.o,$(XBD_SRC)) $(B)/libxbd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/xbdsh: $(patsubst %.c,$(B)/obj/%.o,$(XBDSH_SRC)) $(B)/libxbd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(patsubst %.c,$(B)/obj/%.o,$(TESTLIB)) $(B)/libxbd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

tests: all $(TESTS)

# The test build: same sources, sanitizers on, its own directory.
check:
	$(MAKE) B=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" tests
	tests/run-tests.sh build/asan

check-xen: all
	tests/xen/run.sh $(B)

demo:
	tests/demo.sh

bench: all
	tests/bench/run.sh build

install: all
	install -D -m 0755 $(B)/xbd $(DESTDIR)$(PREFIX)/sbin/xbd
	install -D -m 0755 $(B)/xbdsh $(DESTDIR)$(PREFIX)/sbin/xbdsh

clean:
	rm -rf build

-include $(DEPS)
