# Builds and installs libsipreg like a system C library (the layout cargo-c
# produces and Debian expects):
#
#   make                                   # cargo build --release, then the files to install
#   sudo make install                      # copies only: needs no cargo (sudo's PATH has none)
#   make install PREFIX=$HOME/.local       # a user prefix: see docs/install.md for the run-time path
#   make install PREFIX=/usr DESTDIR=/tmp/stage   # packaging: no ldconfig
#   make install-debug                     # the library's debug info, found by gdb
#   make uninstall PREFIX=/usr/local       # same variables as install
#   make wheel                             # Python wheel with libsipreg.so inside (dist/)
#
# Installed files (LIBDIR defaults to $(PREFIX)/lib; Debian: LIBDIR=$(PREFIX)/lib/x86_64-linux-gnu):
#   $(LIBDIR)/libsipreg.so.$(VERSION)       the shared library, stripped (soname libsipreg.so.$(MAJOR))
#   $(LIBDIR)/libsipreg.so.$(MAJOR)         -> libsipreg.so.$(VERSION)   (run-time link)
#   $(LIBDIR)/libsipreg.so                  -> libsipreg.so.$(MAJOR)     (dev link)
#   $(LIBDIR)/libsipreg.a                   static library (debug info stripped)
#   $(INCLUDEDIR)/sipreg/sipreg.h           header (#include <sipreg.h> with pkg-config's -I)
#   $(INCLUDEDIR)/sipreg/sipreg.hpp         the header-only C++17 wrapper
#   $(BINDIR)/sipreg-register               the command-line client (examples-c)
#   $(LIBDIR)/pkgconfig/sipreg.pc
#   $(LIBDIR)/cmake/sipreg/sipregConfig.cmake, sipregConfigVersion.cmake (target sipreg::sipreg)
# and with install-debug:
#   $(DEBUGDIR)/libsipreg.so.$(VERSION).debug   (the stripped library names it in .gnu_debuglink)
#
# `make` (as your user) does all the building: cargo, strip, the CLI. `make
# install` only copies what `make` left in $(STAGE), and stops with what to
# run if that is missing or older than the cargo build. Without DESTDIR it then
# runs ldconfig when LIBDIR is on the dynamic loader's search path.
#
# The version comes from Cargo.toml alone.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
# gdb looks for a .gnu_debuglink file in the .debug directory next to the library.
DEBUGDIR ?= $(LIBDIR)/.debug
CARGO ?= cargo
INSTALL ?= install
STRIP ?= strip
OBJCOPY ?= objcopy
# Non-root PATHs often lack /sbin.
LDCONFIG ?= $(firstword $(shell command -v ldconfig 2>/dev/null) /sbin/ldconfig)

VERSION := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
# Same rule as build.rs: the soname is libsipreg.so.<crate major>.
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
TARGET_DIR ?= target
BUILT := $(TARGET_DIR)/release
SO := $(BUILT)/libsipreg.so
A := $(BUILT)/libsipreg.a
# What make install copies (made by `make`, from the cargo build).
STAGE := $(BUILT)/install
S_SO := $(STAGE)/libsipreg.so.$(VERSION)
S_DBG := $(STAGE)/libsipreg.so.$(VERSION).debug
S_A := $(STAGE)/libsipreg.a
S_CLI := $(STAGE)/sipreg-register
STAGED := $(S_SO) $(S_DBG) $(S_A) $(S_CLI)

# What a static link needs besides libsipreg.a (rustc --print native-static-libs, minus libc).
LIBS_PRIVATE := -lpthread -ldl -lm -lrt -lutil -lgcc_s

# The installed CLI finds the library relative to itself (bin/../lib), so a
# prefix off the loader's path works too; CLI_RPATH= links it without one.
CLI_RPATH ?= $$ORIGIN/$(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR))
CLI_CFLAGS := -O2 -Wall -Wextra -std=c11 -D_POSIX_C_SOURCE=200809L
comma := ,
CLI_LDFLAGS := -L$(BUILT) -lsipreg -lpthread $(if $(CLI_RPATH),-Wl$(comma)-rpath$(comma)'$(CLI_RPATH)')

# The CMake file finds the header relative to itself (a staged or moved tree works).
INCLUDEDIR_REL = $(shell realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))

# The .pc file names its directories relative to ${prefix} where they are under PREFIX.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@MAJOR@|$(MAJOR)|g' -e 's|@INCLUDEDIR_REL@|$(INCLUDEDIR_REL)|g' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g'

NOT_BUILT = run 'make' first, as your user (it runs cargo build --release and prepares \
the stripped files), then 'make install' again (with sudo for a system prefix).

all: build

build:
	$(CARGO) build --release --lib
	@$(MAKE) --no-print-directory stage

stage: $(STAGED)

# Reached only when cargo has not built the library.
$(SO) $(A):
	@echo "$@ is missing: $(NOT_BUILT)" >&2; exit 1

$(STAGE):
	mkdir -p $@

$(S_DBG): $(SO) | $(STAGE)
	rm -f $@
	$(OBJCOPY) --only-keep-debug $< $@
	chmod 0644 $@

# --strip-unneeded keeps the dynamic symbol table (what programs link against);
# the debug link names the .debug file and carries its checksum.
$(S_SO): $(SO) $(S_DBG) | $(STAGE)
	rm -f $@
	$(STRIP) --strip-unneeded --remove-section=.comment -o $@ $<
	$(OBJCOPY) --add-gnu-debuglink=$(S_DBG) $@

# A static library keeps its symbols (the linker needs them); only debug info goes.
$(S_A): $(A) | $(STAGE)
	rm -f $@
	$(STRIP) --strip-debug -o $@ $<

$(S_CLI): examples-c/sipreg-register.c include/sipreg.h $(SO) $(STAGE)/cli.flags | $(STAGE)
	$(CC) $(CLI_CFLAGS) -Iinclude -o $@ $< $(CLI_LDFLAGS)

# Rewritten (and so relinks the CLI) only when the compiler or its flags change,
# e.g. `make CLI_RPATH=`.
CLI_SIG = $(CC) $(CLI_CFLAGS) $(CLI_LDFLAGS)
same = $(and $(findstring x$(1)x,x$(2)x),$(findstring x$(2)x,x$(1)x))
$(STAGE)/cli.flags: FORCE | $(STAGE)
	$(if $(call same,$(file <$@),$(CLI_SIG)),,$(file >$@,$(CLI_SIG)))

# install copies; it never builds (sudo has no cargo, and root must not write the build tree).
installable:
	@for f in $(STAGED); do \
		[ -f "$$f" ] || { echo "make install: $$f is missing: $(NOT_BUILT)" >&2; exit 1; }; \
	done
	@if [ -f $(SO) ] && [ $(SO) -nt $(S_SO) ]; then \
		echo "make install: $(SO) is newer than $(S_SO): $(NOT_BUILT)" >&2; exit 1; \
	fi

install: installable
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg $(DESTDIR)$(INCLUDEDIR)/sipreg $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(S_SO) $(DESTDIR)$(LIBDIR)/libsipreg.so.$(VERSION)
	ln -sf libsipreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsipreg.so.$(MAJOR)
	ln -sf libsipreg.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libsipreg.so
	$(INSTALL) -m 0644 $(S_A) $(DESTDIR)$(LIBDIR)/libsipreg.a
	$(INSTALL) -m 0644 include/sipreg.h examples-cpp/sipreg.hpp $(DESTDIR)$(INCLUDEDIR)/sipreg/
	$(INSTALL) -m 0755 $(S_CLI) $(DESTDIR)$(BINDIR)/sipreg-register
	$(SUBST) packaging/sipreg.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sipreg.pc
	$(SUBST) packaging/sipregConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfig.cmake
	$(SUBST) packaging/sipregConfigVersion.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfigVersion.cmake
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/sipreg.pc $(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfig*.cmake
	@$(if $(DESTDIR),:,LDCONFIG='$(LDCONFIG)' sh packaging/ldconfig-step.sh install $(LIBDIR))

install-debug: installable
	$(INSTALL) -d $(DESTDIR)$(DEBUGDIR)
	$(INSTALL) -m 0644 $(S_DBG) $(DESTDIR)$(DEBUGDIR)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsipreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsipreg.so.$(MAJOR) \
		$(DESTDIR)$(LIBDIR)/libsipreg.so $(DESTDIR)$(LIBDIR)/libsipreg.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/sipreg.pc \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfig.cmake \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfigVersion.cmake \
		$(DESTDIR)$(INCLUDEDIR)/sipreg/sipreg.h $(DESTDIR)$(INCLUDEDIR)/sipreg/sipreg.hpp \
		$(DESTDIR)$(BINDIR)/sipreg-register \
		$(DESTDIR)$(DEBUGDIR)/libsipreg.so.$(VERSION).debug
	-rmdir $(DESTDIR)$(LIBDIR)/cmake/sipreg $(DESTDIR)$(INCLUDEDIR)/sipreg $(DESTDIR)$(DEBUGDIR) 2>/dev/null
	@$(if $(DESTDIR),:,LDCONFIG='$(LDCONFIG)' sh packaging/ldconfig-step.sh uninstall $(LIBDIR))

wheel: build
	bash bindings/python/build-wheel.sh $(SO) dist

version:
	@echo $(VERSION)

FORCE:

.PHONY: all build stage installable install install-debug uninstall wheel version FORCE
