# Builds and installs libsipreg like a system C library (the layout cargo-c
# produces and Debian expects):
#
#   make                                   # cargo build --release
#   make install PREFIX=/usr/local DESTDIR=/tmp/stage
#   make uninstall PREFIX=/usr/local
#   make wheel                             # Python wheel with libsipreg.so inside (dist/)
#
# Installed files (LIBDIR defaults to $(PREFIX)/lib; Debian: LIBDIR=$(PREFIX)/lib/x86_64-linux-gnu):
#   $(LIBDIR)/libsipreg.so.$(VERSION)       the shared library (soname libsipreg.so.$(MAJOR))
#   $(LIBDIR)/libsipreg.so.$(MAJOR)         -> libsipreg.so.$(VERSION)   (run-time link)
#   $(LIBDIR)/libsipreg.so                  -> libsipreg.so.$(MAJOR)     (dev link)
#   $(LIBDIR)/libsipreg.a                   static library
#   $(INCLUDEDIR)/sipreg/sipreg.h           header (#include <sipreg.h> with pkg-config's -I)
#   $(LIBDIR)/pkgconfig/sipreg.pc
#   $(LIBDIR)/cmake/sipreg/sipregConfig.cmake, sipregConfigVersion.cmake (target sipreg::sipreg)
#
# The version comes from Cargo.toml alone.

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
CARGO ?= cargo
INSTALL ?= install

VERSION := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
# Same rule as build.rs: the soname is libsipreg.so.<crate major>.
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
TARGET_DIR ?= target
BUILT := $(TARGET_DIR)/release
# What a static link needs besides libsipreg.a (rustc --print native-static-libs, minus libc).
LIBS_PRIVATE := -lpthread -ldl -lm -lrt -lutil -lgcc_s

# The CMake file finds the header relative to itself (a staged or moved tree works).
INCLUDEDIR_REL = $(shell realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))

# The .pc file names its directories relative to ${prefix} where they are under PREFIX.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@MAJOR@|$(MAJOR)|g' -e 's|@INCLUDEDIR_REL@|$(INCLUDEDIR_REL)|g' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g'

all: build

build:
	$(CARGO) build --release --lib

$(BUILT)/sipreg.pc: packaging/sipreg.pc.in Cargo.toml FORCE
	$(SUBST) $< > $@

$(BUILT)/sipregConfig.cmake: packaging/sipregConfig.cmake.in Cargo.toml FORCE
	$(SUBST) $< > $@

$(BUILT)/sipregConfigVersion.cmake: packaging/sipregConfigVersion.cmake.in Cargo.toml FORCE
	$(SUBST) $< > $@

GENERATED := $(BUILT)/sipreg.pc $(BUILT)/sipregConfig.cmake $(BUILT)/sipregConfigVersion.cmake

install: build $(GENERATED)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg $(DESTDIR)$(INCLUDEDIR)/sipreg
	$(INSTALL) -m 0755 $(BUILT)/libsipreg.so $(DESTDIR)$(LIBDIR)/libsipreg.so.$(VERSION)
	ln -sf libsipreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsipreg.so.$(MAJOR)
	ln -sf libsipreg.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libsipreg.so
	$(INSTALL) -m 0644 $(BUILT)/libsipreg.a $(DESTDIR)$(LIBDIR)/libsipreg.a
	$(INSTALL) -m 0644 include/sipreg.h $(DESTDIR)$(INCLUDEDIR)/sipreg/sipreg.h
	$(INSTALL) -m 0644 $(BUILT)/sipreg.pc $(DESTDIR)$(LIBDIR)/pkgconfig/sipreg.pc
	$(INSTALL) -m 0644 $(BUILT)/sipregConfig.cmake $(BUILT)/sipregConfigVersion.cmake \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsipreg.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsipreg.so.$(MAJOR) \
		$(DESTDIR)$(LIBDIR)/libsipreg.so $(DESTDIR)$(LIBDIR)/libsipreg.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/sipreg.pc \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfig.cmake \
		$(DESTDIR)$(LIBDIR)/cmake/sipreg/sipregConfigVersion.cmake \
		$(DESTDIR)$(INCLUDEDIR)/sipreg/sipreg.h
	-rmdir $(DESTDIR)$(LIBDIR)/cmake/sipreg $(DESTDIR)$(INCLUDEDIR)/sipreg 2>/dev/null

wheel: build
	bash bindings/python/build-wheel.sh $(BUILT)/libsipreg.so dist

version:
	@echo $(VERSION)

FORCE:

.PHONY: all build install uninstall wheel version FORCE
