/*
 * Layout conformance probe for the jextract-generated package io.github.vduse4j.bindings.uapi.
 *
 * LayoutConformanceTest compiles this file with gcc at test time, against the same uapi headers
 * scripts/regen-bindings feeds to jextract (/usr/include), runs it and compares every line with
 * the Java side. Output, one item per line:
 *
 *   size      <class> <sizeof>              struct or typedef; <class> is the generated Java class
 *   align     <class> <_Alignof>            ('$' separates a nested struct class from its owner)
 *   offset    <class>.<field> <offsetof>    every field, including members of anonymous unions
 *   fieldsize <class>.<field> <sizeof>      0 for flexible array members
 *   const     <NAME> <sizeof> <value>       macro/enum constant; value cast to unsigned 64 bits
 *
 * Keep the entries in step with scripts/bindings/uapi.args: the test fails on any generated
 * struct, field or constant that has no line here (and on any line with no Java counterpart).
 */
#include <stddef.h>
#include <stdio.h>

#include <linux/vduse.h>
#include <linux/vhost.h>
#include <linux/vhost_types.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/io_uring.h>

#define SIZE_ALIGN(jname, type) \
    printf("size %s %zu\nalign %s %zu\n", jname, sizeof(type), jname, (size_t) _Alignof(type))
#define STRUCT(jname, type) SIZE_ALIGN(jname, type)
/* A typedef carrying its own __attribute__((aligned(N))), e.g. vring_desc_t. */
#define TYPEDEF(jname, type) SIZE_ALIGN(jname, type)
#define FIELD(jname, type, member) \
    printf("offset %s.%s %zu\nfieldsize %s.%s %zu\n", jname, #member, offsetof(type, member), \
           jname, #member, sizeof(((type *) 0)->member))
/* Flexible array member: sizeof is not allowed; the Java layout has a 0-element sequence. */
#define FLEX(jname, type, member) \
    printf("offset %s.%s %zu\nfieldsize %s.%s 0\n", jname, #member, offsetof(type, member), \
           jname, #member)
#define CONST(name) \
    printf("const %s %zu %llu\n", #name, sizeof(name), (unsigned long long) (name))

int main(void)
{
    /* linux/vduse.h */
    STRUCT("vduse_dev_config", struct vduse_dev_config);
    FIELD("vduse_dev_config", struct vduse_dev_config, name);
    FIELD("vduse_dev_config", struct vduse_dev_config, vendor_id);
    FIELD("vduse_dev_config", struct vduse_dev_config, device_id);
    FIELD("vduse_dev_config", struct vduse_dev_config, features);
    FIELD("vduse_dev_config", struct vduse_dev_config, vq_num);
    FIELD("vduse_dev_config", struct vduse_dev_config, vq_align);
    FIELD("vduse_dev_config", struct vduse_dev_config, reserved);
    FIELD("vduse_dev_config", struct vduse_dev_config, config_size);
    FLEX("vduse_dev_config", struct vduse_dev_config, config);
    STRUCT("vduse_iotlb_entry", struct vduse_iotlb_entry);
    FIELD("vduse_iotlb_entry", struct vduse_iotlb_entry, offset);
    FIELD("vduse_iotlb_entry", struct vduse_iotlb_entry, start);
    FIELD("vduse_iotlb_entry", struct vduse_iotlb_entry, last);
    FIELD("vduse_iotlb_entry", struct vduse_iotlb_entry, perm);
    STRUCT("vduse_config_data", struct vduse_config_data);
    FIELD("vduse_config_data", struct vduse_config_data, offset);
    FIELD("vduse_config_data", struct vduse_config_data, length);
    FLEX("vduse_config_data", struct vduse_config_data, buffer);
    STRUCT("vduse_vq_config", struct vduse_vq_config);
    FIELD("vduse_vq_config", struct vduse_vq_config, index);
    FIELD("vduse_vq_config", struct vduse_vq_config, max_size);
    FIELD("vduse_vq_config", struct vduse_vq_config, reserved);
    STRUCT("vduse_vq_state_split", struct vduse_vq_state_split);
    FIELD("vduse_vq_state_split", struct vduse_vq_state_split, avail_index);
    STRUCT("vduse_vq_state_packed", struct vduse_vq_state_packed);
    FIELD("vduse_vq_state_packed", struct vduse_vq_state_packed, last_avail_counter);
    FIELD("vduse_vq_state_packed", struct vduse_vq_state_packed, last_avail_idx);
    FIELD("vduse_vq_state_packed", struct vduse_vq_state_packed, last_used_counter);
    FIELD("vduse_vq_state_packed", struct vduse_vq_state_packed, last_used_idx);
    STRUCT("vduse_vq_info", struct vduse_vq_info);
    FIELD("vduse_vq_info", struct vduse_vq_info, index);
    FIELD("vduse_vq_info", struct vduse_vq_info, num);
    FIELD("vduse_vq_info", struct vduse_vq_info, desc_addr);
    FIELD("vduse_vq_info", struct vduse_vq_info, driver_addr);
    FIELD("vduse_vq_info", struct vduse_vq_info, device_addr);
    FIELD("vduse_vq_info", struct vduse_vq_info, split);
    FIELD("vduse_vq_info", struct vduse_vq_info, packed);
    FIELD("vduse_vq_info", struct vduse_vq_info, ready);
    STRUCT("vduse_vq_eventfd", struct vduse_vq_eventfd);
    FIELD("vduse_vq_eventfd", struct vduse_vq_eventfd, index);
    FIELD("vduse_vq_eventfd", struct vduse_vq_eventfd, fd);
    STRUCT("vduse_iova_umem", struct vduse_iova_umem);
    FIELD("vduse_iova_umem", struct vduse_iova_umem, uaddr);
    FIELD("vduse_iova_umem", struct vduse_iova_umem, iova);
    FIELD("vduse_iova_umem", struct vduse_iova_umem, size);
    FIELD("vduse_iova_umem", struct vduse_iova_umem, reserved);
    STRUCT("vduse_iova_info", struct vduse_iova_info);
    FIELD("vduse_iova_info", struct vduse_iova_info, start);
    FIELD("vduse_iova_info", struct vduse_iova_info, last);
    FIELD("vduse_iova_info", struct vduse_iova_info, capability);
    FIELD("vduse_iova_info", struct vduse_iova_info, reserved);
    STRUCT("vduse_vq_state", struct vduse_vq_state);
    FIELD("vduse_vq_state", struct vduse_vq_state, index);
    FIELD("vduse_vq_state", struct vduse_vq_state, split);
    FIELD("vduse_vq_state", struct vduse_vq_state, packed);
    STRUCT("vduse_dev_status", struct vduse_dev_status);
    FIELD("vduse_dev_status", struct vduse_dev_status, status);
    STRUCT("vduse_iova_range", struct vduse_iova_range);
    FIELD("vduse_iova_range", struct vduse_iova_range, start);
    FIELD("vduse_iova_range", struct vduse_iova_range, last);
    STRUCT("vduse_dev_request", struct vduse_dev_request);
    FIELD("vduse_dev_request", struct vduse_dev_request, type);
    FIELD("vduse_dev_request", struct vduse_dev_request, request_id);
    FIELD("vduse_dev_request", struct vduse_dev_request, reserved);
    FIELD("vduse_dev_request", struct vduse_dev_request, vq_state);
    FIELD("vduse_dev_request", struct vduse_dev_request, s);
    FIELD("vduse_dev_request", struct vduse_dev_request, iova);
    FIELD("vduse_dev_request", struct vduse_dev_request, padding);
    STRUCT("vduse_dev_response", struct vduse_dev_response);
    FIELD("vduse_dev_response", struct vduse_dev_response, request_id);
    FIELD("vduse_dev_response", struct vduse_dev_response, result);
    FIELD("vduse_dev_response", struct vduse_dev_response, reserved);
    FIELD("vduse_dev_response", struct vduse_dev_response, vq_state);
    FIELD("vduse_dev_response", struct vduse_dev_response, padding);
    CONST(VDUSE_BASE);
    CONST(VDUSE_API_VERSION);
    CONST(VDUSE_NAME_MAX);
    CONST(VDUSE_GET_API_VERSION);
    CONST(VDUSE_SET_API_VERSION);
    CONST(VDUSE_CREATE_DEV);
    CONST(VDUSE_DESTROY_DEV);
    CONST(VDUSE_IOTLB_GET_FD);
    CONST(VDUSE_DEV_GET_FEATURES);
    CONST(VDUSE_DEV_SET_CONFIG);
    CONST(VDUSE_DEV_INJECT_CONFIG_IRQ);
    CONST(VDUSE_VQ_SETUP);
    CONST(VDUSE_VQ_GET_INFO);
    CONST(VDUSE_VQ_SETUP_KICKFD);
    CONST(VDUSE_VQ_INJECT_IRQ);
    CONST(VDUSE_IOTLB_REG_UMEM);
    CONST(VDUSE_IOTLB_DEREG_UMEM);
    CONST(VDUSE_IOTLB_GET_INFO);
    CONST(VDUSE_ACCESS_RO);
    CONST(VDUSE_ACCESS_WO);
    CONST(VDUSE_ACCESS_RW);
    CONST(VDUSE_EVENTFD_DEASSIGN);
    CONST(VDUSE_IOVA_CAP_UMEM);
    CONST(VDUSE_GET_VQ_STATE);
    CONST(VDUSE_SET_STATUS);
    CONST(VDUSE_UPDATE_IOTLB);
    CONST(VDUSE_REQ_RESULT_OK);
    CONST(VDUSE_REQ_RESULT_FAILED);

    /* linux/vhost_types.h, linux/vhost.h */
    STRUCT("vhost_vring_state", struct vhost_vring_state);
    FIELD("vhost_vring_state", struct vhost_vring_state, index);
    FIELD("vhost_vring_state", struct vhost_vring_state, num);
    STRUCT("vhost_vring_file", struct vhost_vring_file);
    FIELD("vhost_vring_file", struct vhost_vring_file, index);
    FIELD("vhost_vring_file", struct vhost_vring_file, fd);
    STRUCT("vhost_vring_addr", struct vhost_vring_addr);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, index);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, flags);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, desc_user_addr);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, used_user_addr);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, avail_user_addr);
    FIELD("vhost_vring_addr", struct vhost_vring_addr, log_guest_addr);
    STRUCT("vhost_iotlb_msg", struct vhost_iotlb_msg);
    FIELD("vhost_iotlb_msg", struct vhost_iotlb_msg, iova);
    FIELD("vhost_iotlb_msg", struct vhost_iotlb_msg, size);
    FIELD("vhost_iotlb_msg", struct vhost_iotlb_msg, uaddr);
    FIELD("vhost_iotlb_msg", struct vhost_iotlb_msg, perm);
    FIELD("vhost_iotlb_msg", struct vhost_iotlb_msg, type);
    STRUCT("vhost_msg_v2", struct vhost_msg_v2);
    FIELD("vhost_msg_v2", struct vhost_msg_v2, type);
    FIELD("vhost_msg_v2", struct vhost_msg_v2, asid);
    FIELD("vhost_msg_v2", struct vhost_msg_v2, iotlb);
    FIELD("vhost_msg_v2", struct vhost_msg_v2, padding);
    STRUCT("vhost_memory_region", struct vhost_memory_region);
    FIELD("vhost_memory_region", struct vhost_memory_region, guest_phys_addr);
    FIELD("vhost_memory_region", struct vhost_memory_region, memory_size);
    FIELD("vhost_memory_region", struct vhost_memory_region, userspace_addr);
    FIELD("vhost_memory_region", struct vhost_memory_region, flags_padding);
    CONST(VHOST_IOTLB_MISS);
    CONST(VHOST_IOTLB_UPDATE);
    CONST(VHOST_IOTLB_INVALIDATE);
    CONST(VHOST_IOTLB_ACCESS_FAIL);
    CONST(VHOST_IOTLB_BATCH_BEGIN);
    CONST(VHOST_IOTLB_BATCH_END);
    CONST(VHOST_IOTLB_MSG);
    CONST(VHOST_IOTLB_MSG_V2);
    CONST(VHOST_ACCESS_RO);
    CONST(VHOST_ACCESS_WO);
    CONST(VHOST_ACCESS_RW);
    CONST(VHOST_VRING_F_LOG);
    CONST(VHOST_F_LOG_ALL);
    CONST(VHOST_PAGE_SIZE);
    CONST(VHOST_BACKEND_F_IOTLB_MSG_V2);
    CONST(VHOST_BACKEND_F_IOTLB_BATCH);
    CONST(VHOST_FILE_UNBIND);
    CONST(VHOST_VRING_LITTLE_ENDIAN);
    CONST(VHOST_VRING_BIG_ENDIAN);

    /* linux/virtio_ring.h */
    STRUCT("vring_desc", struct vring_desc);
    FIELD("vring_desc", struct vring_desc, addr);
    FIELD("vring_desc", struct vring_desc, len);
    FIELD("vring_desc", struct vring_desc, flags);
    FIELD("vring_desc", struct vring_desc, next);
    STRUCT("vring_avail", struct vring_avail);
    FIELD("vring_avail", struct vring_avail, flags);
    FIELD("vring_avail", struct vring_avail, idx);
    FLEX("vring_avail", struct vring_avail, ring);
    STRUCT("vring_used_elem", struct vring_used_elem);
    FIELD("vring_used_elem", struct vring_used_elem, id);
    FIELD("vring_used_elem", struct vring_used_elem, len);
    STRUCT("vring_used", struct vring_used);
    FIELD("vring_used", struct vring_used, flags);
    FIELD("vring_used", struct vring_used, idx);
    FLEX("vring_used", struct vring_used, ring);
    STRUCT("vring_packed_desc", struct vring_packed_desc);
    FIELD("vring_packed_desc", struct vring_packed_desc, addr);
    FIELD("vring_packed_desc", struct vring_packed_desc, len);
    FIELD("vring_packed_desc", struct vring_packed_desc, id);
    FIELD("vring_packed_desc", struct vring_packed_desc, flags);
    STRUCT("vring_packed_desc_event", struct vring_packed_desc_event);
    FIELD("vring_packed_desc_event", struct vring_packed_desc_event, off_wrap);
    FIELD("vring_packed_desc_event", struct vring_packed_desc_event, flags);
    TYPEDEF("vring_desc_t", vring_desc_t);
    TYPEDEF("vring_avail_t", vring_avail_t);
    TYPEDEF("vring_used_elem_t", vring_used_elem_t);
    TYPEDEF("vring_used_t", vring_used_t);
    CONST(VRING_DESC_F_NEXT);
    CONST(VRING_DESC_F_WRITE);
    CONST(VRING_DESC_F_INDIRECT);
    CONST(VRING_PACKED_DESC_F_AVAIL);
    CONST(VRING_PACKED_DESC_F_USED);
    CONST(VRING_USED_F_NO_NOTIFY);
    CONST(VRING_AVAIL_F_NO_INTERRUPT);
    CONST(VRING_PACKED_EVENT_FLAG_ENABLE);
    CONST(VRING_PACKED_EVENT_FLAG_DISABLE);
    CONST(VRING_PACKED_EVENT_FLAG_DESC);
    CONST(VRING_PACKED_EVENT_F_WRAP_CTR);
    CONST(VIRTIO_RING_F_INDIRECT_DESC);
    CONST(VIRTIO_RING_F_EVENT_IDX);
    CONST(VRING_AVAIL_ALIGN_SIZE);
    CONST(VRING_USED_ALIGN_SIZE);
    CONST(VRING_DESC_ALIGN_SIZE);

    /* linux/virtio_blk.h (+ VIRTIO_ID_BLOCK from linux/virtio_ids.h) */
    STRUCT("virtio_blk_config", struct virtio_blk_config);
    FIELD("virtio_blk_config", struct virtio_blk_config, capacity);
    FIELD("virtio_blk_config", struct virtio_blk_config, size_max);
    FIELD("virtio_blk_config", struct virtio_blk_config, seg_max);
    FIELD("virtio_blk_config", struct virtio_blk_config, geometry);
    FIELD("virtio_blk_config", struct virtio_blk_config, blk_size);
    FIELD("virtio_blk_config", struct virtio_blk_config, physical_block_exp);
    FIELD("virtio_blk_config", struct virtio_blk_config, alignment_offset);
    FIELD("virtio_blk_config", struct virtio_blk_config, min_io_size);
    FIELD("virtio_blk_config", struct virtio_blk_config, opt_io_size);
    FIELD("virtio_blk_config", struct virtio_blk_config, wce);
    FIELD("virtio_blk_config", struct virtio_blk_config, unused);
    FIELD("virtio_blk_config", struct virtio_blk_config, num_queues);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_discard_sectors);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_discard_seg);
    FIELD("virtio_blk_config", struct virtio_blk_config, discard_sector_alignment);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_write_zeroes_sectors);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_write_zeroes_seg);
    FIELD("virtio_blk_config", struct virtio_blk_config, write_zeroes_may_unmap);
    FIELD("virtio_blk_config", struct virtio_blk_config, unused1);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_secure_erase_sectors);
    FIELD("virtio_blk_config", struct virtio_blk_config, max_secure_erase_seg);
    FIELD("virtio_blk_config", struct virtio_blk_config, secure_erase_sector_alignment);
    STRUCT("virtio_blk_config$virtio_blk_geometry", struct virtio_blk_geometry);
    FIELD("virtio_blk_config$virtio_blk_geometry", struct virtio_blk_geometry, cylinders);
    FIELD("virtio_blk_config$virtio_blk_geometry", struct virtio_blk_geometry, heads);
    FIELD("virtio_blk_config$virtio_blk_geometry", struct virtio_blk_geometry, sectors);
    STRUCT("virtio_blk_outhdr", struct virtio_blk_outhdr);
    FIELD("virtio_blk_outhdr", struct virtio_blk_outhdr, type);
    FIELD("virtio_blk_outhdr", struct virtio_blk_outhdr, ioprio);
    FIELD("virtio_blk_outhdr", struct virtio_blk_outhdr, sector);
    STRUCT("virtio_blk_discard_write_zeroes", struct virtio_blk_discard_write_zeroes);
    FIELD("virtio_blk_discard_write_zeroes", struct virtio_blk_discard_write_zeroes, sector);
    FIELD("virtio_blk_discard_write_zeroes", struct virtio_blk_discard_write_zeroes, num_sectors);
    FIELD("virtio_blk_discard_write_zeroes", struct virtio_blk_discard_write_zeroes, flags);
    CONST(VIRTIO_ID_BLOCK);
    CONST(VIRTIO_BLK_F_SIZE_MAX);
    CONST(VIRTIO_BLK_F_SEG_MAX);
    CONST(VIRTIO_BLK_F_GEOMETRY);
    CONST(VIRTIO_BLK_F_RO);
    CONST(VIRTIO_BLK_F_BLK_SIZE);
    CONST(VIRTIO_BLK_F_TOPOLOGY);
    CONST(VIRTIO_BLK_F_MQ);
    CONST(VIRTIO_BLK_F_DISCARD);
    CONST(VIRTIO_BLK_F_WRITE_ZEROES);
    CONST(VIRTIO_BLK_F_SECURE_ERASE);
    CONST(VIRTIO_BLK_F_BARRIER);
    CONST(VIRTIO_BLK_F_SCSI);
    CONST(VIRTIO_BLK_F_FLUSH);
    CONST(VIRTIO_BLK_F_CONFIG_WCE);
    CONST(VIRTIO_BLK_F_WCE);
    CONST(VIRTIO_BLK_ID_BYTES);
    CONST(VIRTIO_BLK_T_IN);
    CONST(VIRTIO_BLK_T_OUT);
    CONST(VIRTIO_BLK_T_SCSI_CMD);
    CONST(VIRTIO_BLK_T_FLUSH);
    CONST(VIRTIO_BLK_T_GET_ID);
    CONST(VIRTIO_BLK_T_DISCARD);
    CONST(VIRTIO_BLK_T_WRITE_ZEROES);
    CONST(VIRTIO_BLK_T_SECURE_ERASE);
    CONST(VIRTIO_BLK_T_BARRIER);
    CONST(VIRTIO_BLK_S_OK);
    CONST(VIRTIO_BLK_S_IOERR);
    CONST(VIRTIO_BLK_S_UNSUPP);
    CONST(VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);

    /* linux/virtio_config.h */
    CONST(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    CONST(VIRTIO_CONFIG_S_DRIVER);
    CONST(VIRTIO_CONFIG_S_DRIVER_OK);
    CONST(VIRTIO_CONFIG_S_FEATURES_OK);
    CONST(VIRTIO_CONFIG_S_NEEDS_RESET);
    CONST(VIRTIO_CONFIG_S_FAILED);
    CONST(VIRTIO_TRANSPORT_F_START);
    CONST(VIRTIO_TRANSPORT_F_END);
    CONST(VIRTIO_F_NOTIFY_ON_EMPTY);
    CONST(VIRTIO_F_ANY_LAYOUT);
    CONST(VIRTIO_F_VERSION_1);
    CONST(VIRTIO_F_ACCESS_PLATFORM);
    CONST(VIRTIO_F_IOMMU_PLATFORM);
    CONST(VIRTIO_F_RING_PACKED);
    CONST(VIRTIO_F_IN_ORDER);
    CONST(VIRTIO_F_ORDER_PLATFORM);
    CONST(VIRTIO_F_SR_IOV);
    CONST(VIRTIO_F_RING_RESET);

    /* linux/io_uring.h */
    STRUCT("io_uring_sqe", struct io_uring_sqe);
    FIELD("io_uring_sqe", struct io_uring_sqe, opcode);
    FIELD("io_uring_sqe", struct io_uring_sqe, flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, ioprio);
    FIELD("io_uring_sqe", struct io_uring_sqe, fd);
    FIELD("io_uring_sqe", struct io_uring_sqe, off);
    FIELD("io_uring_sqe", struct io_uring_sqe, addr2);
    FIELD("io_uring_sqe", struct io_uring_sqe, cmd_op);
    FIELD("io_uring_sqe", struct io_uring_sqe, __pad1);
    FIELD("io_uring_sqe", struct io_uring_sqe, addr);
    FIELD("io_uring_sqe", struct io_uring_sqe, splice_off_in);
    FIELD("io_uring_sqe", struct io_uring_sqe, len);
    FIELD("io_uring_sqe", struct io_uring_sqe, rw_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, fsync_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, poll_events);
    FIELD("io_uring_sqe", struct io_uring_sqe, poll32_events);
    FIELD("io_uring_sqe", struct io_uring_sqe, sync_range_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, msg_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, timeout_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, accept_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, cancel_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, open_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, statx_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, fadvise_advice);
    FIELD("io_uring_sqe", struct io_uring_sqe, splice_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, rename_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, unlink_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, hardlink_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, xattr_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, msg_ring_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, uring_cmd_flags);
    FIELD("io_uring_sqe", struct io_uring_sqe, user_data);
    FIELD("io_uring_sqe", struct io_uring_sqe, buf_index);
    FIELD("io_uring_sqe", struct io_uring_sqe, buf_group);
    FIELD("io_uring_sqe", struct io_uring_sqe, personality);
    FIELD("io_uring_sqe", struct io_uring_sqe, splice_fd_in);
    FIELD("io_uring_sqe", struct io_uring_sqe, file_index);
    FIELD("io_uring_sqe", struct io_uring_sqe, addr_len);
    FIELD("io_uring_sqe", struct io_uring_sqe, __pad3);
    FIELD("io_uring_sqe", struct io_uring_sqe, addr3);
    FIELD("io_uring_sqe", struct io_uring_sqe, __pad2);
    FIELD("io_uring_sqe", struct io_uring_sqe, cmd);
    STRUCT("io_uring_cqe", struct io_uring_cqe);
    FIELD("io_uring_cqe", struct io_uring_cqe, user_data);
    FIELD("io_uring_cqe", struct io_uring_cqe, res);
    FIELD("io_uring_cqe", struct io_uring_cqe, flags);
    FLEX("io_uring_cqe", struct io_uring_cqe, big_cqe);
    STRUCT("io_uring_params", struct io_uring_params);
    FIELD("io_uring_params", struct io_uring_params, sq_entries);
    FIELD("io_uring_params", struct io_uring_params, cq_entries);
    FIELD("io_uring_params", struct io_uring_params, flags);
    FIELD("io_uring_params", struct io_uring_params, sq_thread_cpu);
    FIELD("io_uring_params", struct io_uring_params, sq_thread_idle);
    FIELD("io_uring_params", struct io_uring_params, features);
    FIELD("io_uring_params", struct io_uring_params, wq_fd);
    FIELD("io_uring_params", struct io_uring_params, resv);
    FIELD("io_uring_params", struct io_uring_params, sq_off);
    FIELD("io_uring_params", struct io_uring_params, cq_off);
    STRUCT("io_sqring_offsets", struct io_sqring_offsets);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, head);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, tail);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, ring_mask);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, ring_entries);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, flags);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, dropped);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, array);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, resv1);
    FIELD("io_sqring_offsets", struct io_sqring_offsets, resv2);
    STRUCT("io_cqring_offsets", struct io_cqring_offsets);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, head);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, tail);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, ring_mask);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, ring_entries);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, overflow);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, cqes);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, flags);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, resv1);
    FIELD("io_cqring_offsets", struct io_cqring_offsets, resv2);
    STRUCT("io_uring_files_update", struct io_uring_files_update);
    FIELD("io_uring_files_update", struct io_uring_files_update, offset);
    FIELD("io_uring_files_update", struct io_uring_files_update, resv);
    FIELD("io_uring_files_update", struct io_uring_files_update, fds);
    STRUCT("io_uring_rsrc_register", struct io_uring_rsrc_register);
    FIELD("io_uring_rsrc_register", struct io_uring_rsrc_register, nr);
    FIELD("io_uring_rsrc_register", struct io_uring_rsrc_register, flags);
    FIELD("io_uring_rsrc_register", struct io_uring_rsrc_register, resv2);
    FIELD("io_uring_rsrc_register", struct io_uring_rsrc_register, data);
    FIELD("io_uring_rsrc_register", struct io_uring_rsrc_register, tags);
    STRUCT("io_uring_rsrc_update", struct io_uring_rsrc_update);
    FIELD("io_uring_rsrc_update", struct io_uring_rsrc_update, offset);
    FIELD("io_uring_rsrc_update", struct io_uring_rsrc_update, resv);
    FIELD("io_uring_rsrc_update", struct io_uring_rsrc_update, data);
    STRUCT("io_uring_rsrc_update2", struct io_uring_rsrc_update2);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, offset);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, resv);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, data);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, tags);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, nr);
    FIELD("io_uring_rsrc_update2", struct io_uring_rsrc_update2, resv2);
    STRUCT("io_uring_probe", struct io_uring_probe);
    FIELD("io_uring_probe", struct io_uring_probe, last_op);
    FIELD("io_uring_probe", struct io_uring_probe, ops_len);
    FIELD("io_uring_probe", struct io_uring_probe, resv);
    FIELD("io_uring_probe", struct io_uring_probe, resv2);
    FLEX("io_uring_probe", struct io_uring_probe, ops);
    STRUCT("io_uring_probe_op", struct io_uring_probe_op);
    FIELD("io_uring_probe_op", struct io_uring_probe_op, op);
    FIELD("io_uring_probe_op", struct io_uring_probe_op, resv);
    FIELD("io_uring_probe_op", struct io_uring_probe_op, flags);
    FIELD("io_uring_probe_op", struct io_uring_probe_op, resv2);
    CONST(IORING_SETUP_IOPOLL);
    CONST(IORING_SETUP_SQPOLL);
    CONST(IORING_SETUP_SQ_AFF);
    CONST(IORING_SETUP_CQSIZE);
    CONST(IORING_SETUP_CLAMP);
    CONST(IORING_SETUP_ATTACH_WQ);
    CONST(IORING_SETUP_R_DISABLED);
    CONST(IORING_SETUP_SUBMIT_ALL);
    CONST(IORING_SETUP_COOP_TASKRUN);
    CONST(IORING_SETUP_TASKRUN_FLAG);
    CONST(IORING_SETUP_SQE128);
    CONST(IORING_SETUP_CQE32);
    CONST(IORING_SETUP_SINGLE_ISSUER);
    CONST(IORING_SETUP_DEFER_TASKRUN);
    CONST(IORING_ENTER_GETEVENTS);
    CONST(IORING_ENTER_SQ_WAKEUP);
    CONST(IORING_ENTER_SQ_WAIT);
    CONST(IORING_ENTER_EXT_ARG);
    CONST(IORING_ENTER_REGISTERED_RING);
    CONST(IORING_OP_NOP);
    CONST(IORING_OP_READV);
    CONST(IORING_OP_WRITEV);
    CONST(IORING_OP_FSYNC);
    CONST(IORING_OP_READ_FIXED);
    CONST(IORING_OP_WRITE_FIXED);
    CONST(IORING_OP_POLL_ADD);
    CONST(IORING_OP_POLL_REMOVE);
    CONST(IORING_OP_TIMEOUT);
    CONST(IORING_OP_ASYNC_CANCEL);
    CONST(IORING_OP_FALLOCATE);
    CONST(IORING_OP_READ);
    CONST(IORING_OP_WRITE);
    CONST(IORING_OP_LAST);
    CONST(IOSQE_FIXED_FILE_BIT);
    CONST(IOSQE_IO_DRAIN_BIT);
    CONST(IOSQE_IO_LINK_BIT);
    CONST(IOSQE_IO_HARDLINK_BIT);
    CONST(IOSQE_ASYNC_BIT);
    CONST(IOSQE_BUFFER_SELECT_BIT);
    CONST(IOSQE_CQE_SKIP_SUCCESS_BIT);
    CONST(IOSQE_FIXED_FILE);
    CONST(IOSQE_IO_DRAIN);
    CONST(IOSQE_IO_LINK);
    CONST(IOSQE_IO_HARDLINK);
    CONST(IOSQE_ASYNC);
    CONST(IOSQE_BUFFER_SELECT);
    CONST(IOSQE_CQE_SKIP_SUCCESS);
    CONST(IORING_FSYNC_DATASYNC);
    CONST(IORING_POLL_ADD_MULTI);
    CONST(IORING_TIMEOUT_ABS);
    CONST(IORING_CQE_F_BUFFER);
    CONST(IORING_CQE_F_MORE);
    CONST(IORING_OFF_SQ_RING);
    CONST(IORING_OFF_CQ_RING);
    CONST(IORING_OFF_SQES);
    CONST(IORING_SQ_NEED_WAKEUP);
    CONST(IORING_SQ_CQ_OVERFLOW);
    CONST(IORING_SQ_TASKRUN);
    CONST(IORING_CQ_EVENTFD_DISABLED);
    CONST(IORING_FEAT_SINGLE_MMAP);
    CONST(IORING_FEAT_NODROP);
    CONST(IORING_FEAT_SUBMIT_STABLE);
    CONST(IORING_FEAT_RW_CUR_POS);
    CONST(IORING_FEAT_CUR_PERSONALITY);
    CONST(IORING_FEAT_FAST_POLL);
    CONST(IORING_FEAT_POLL_32BITS);
    CONST(IORING_FEAT_SQPOLL_NONFIXED);
    CONST(IORING_FEAT_EXT_ARG);
    CONST(IORING_FEAT_NATIVE_WORKERS);
    CONST(IORING_FEAT_RSRC_TAGS);
    CONST(IORING_FEAT_CQE_SKIP);
    CONST(IORING_FEAT_LINKED_FILE);
    CONST(IORING_REGISTER_BUFFERS);
    CONST(IORING_UNREGISTER_BUFFERS);
    CONST(IORING_REGISTER_FILES);
    CONST(IORING_UNREGISTER_FILES);
    CONST(IORING_REGISTER_EVENTFD);
    CONST(IORING_UNREGISTER_EVENTFD);
    CONST(IORING_REGISTER_FILES_UPDATE);
    CONST(IORING_REGISTER_EVENTFD_ASYNC);
    CONST(IORING_REGISTER_PROBE);
    CONST(IORING_REGISTER_ENABLE_RINGS);
    CONST(IORING_REGISTER_FILES2);
    CONST(IORING_REGISTER_FILES_UPDATE2);
    CONST(IORING_REGISTER_BUFFERS2);
    CONST(IORING_REGISTER_BUFFERS_UPDATE);
    CONST(IORING_REGISTER_IOWQ_AFF);
    CONST(IORING_UNREGISTER_IOWQ_AFF);
    CONST(IORING_REGISTER_IOWQ_MAX_WORKERS);
    CONST(IORING_REGISTER_RING_FDS);
    CONST(IORING_UNREGISTER_RING_FDS);
    CONST(IORING_REGISTER_LAST);
    CONST(IORING_RSRC_REGISTER_SPARSE);
    CONST(IORING_REGISTER_FILES_SKIP);
    CONST(IO_URING_OP_SUPPORTED);

    return 0;
}
