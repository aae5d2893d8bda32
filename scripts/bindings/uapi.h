/*
 * Input header for scripts/regen-bindings: the Linux uapi headers vduse4j binds.
 * jextract parses this file against /usr/include; the filter list is uapi.args.
 */
#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/vhost_types.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/io_uring.h>
