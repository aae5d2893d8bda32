/*
 * Input header for scripts/regen-bindings-rbd: librados and librbd (Debian librados-dev, librbd-dev).
 * jextract parses this file against /usr/include; the filter list is rbd.args.
 */
#include <rados/librados.h>
#include <rbd/librbd.h>
