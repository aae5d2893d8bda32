/*
 * Prints the Linux x86_64 values of the constants that the hand-written libc layer
 * (io.github.vduse4j.bindings) defines by hand, for LibcConstantsTest to compare.
 * Output lines: "const NAME VALUE" (NAME is the Java constant's name, looked up by reflection),
 * "layout NAME VALUE" (struct sizes, offsets and ioctl encodings the test maps by hand) and
 * "errno NUMBER NAME TEXT" (the errno table with glibc's strerror text).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/vhost.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>

#define C(name) printf("const %s %lld\n", #name, (long long) (name))
#define N(java, expr) printf("const %s %lld\n", #java, (long long) (expr))
#define L(label, expr) printf("layout %s %lld\n", #label, (long long) (expr))
#define E(name) printf("errno %d %s %s\n", name, #name, strerror(name))

int main(void) {
    /* FileIo */
    C(O_RDONLY); C(O_WRONLY); C(O_RDWR); C(O_CREAT); C(O_EXCL); C(O_NOCTTY); C(O_TRUNC);
    C(O_APPEND); C(O_NONBLOCK); C(O_DSYNC); C(O_DIRECT); C(O_DIRECTORY); C(O_NOFOLLOW);
    C(O_NOATIME); C(O_CLOEXEC); C(O_SYNC); C(O_PATH); C(O_TMPFILE);
    C(MFD_CLOEXEC); C(MFD_ALLOW_SEALING); C(MFD_HUGETLB);
    C(FALLOC_FL_KEEP_SIZE); C(FALLOC_FL_PUNCH_HOLE); C(FALLOC_FL_COLLAPSE_RANGE);
    C(FALLOC_FL_ZERO_RANGE); C(FALLOC_FL_INSERT_RANGE); C(FALLOC_FL_UNSHARE_RANGE);
    C(F_ADD_SEALS); C(F_GET_SEALS); C(F_SEAL_SEAL); C(F_SEAL_SHRINK); C(F_SEAL_GROW); C(F_SEAL_WRITE);
    C(F_SEAL_FUTURE_WRITE);
    N(STAT_SIZE, sizeof(struct stat)); N(STAT_ST_DEV, offsetof(struct stat, st_dev));
    N(STAT_ST_INO, offsetof(struct stat, st_ino));
    /* MemoryMap */
    C(PROT_NONE); C(PROT_READ); C(PROT_WRITE); C(PROT_EXEC);
    C(MAP_SHARED); C(MAP_PRIVATE); C(MAP_SHARED_VALIDATE); C(MAP_FIXED); C(MAP_ANONYMOUS);
    C(MAP_NORESERVE); C(MAP_POPULATE); C(MAP_LOCKED); C(MAP_HUGETLB); C(MAP_FIXED_NOREPLACE);
    C(MAP_FAILED);
    /* EventFd */
    C(EFD_SEMAPHORE); C(EFD_CLOEXEC); C(EFD_NONBLOCK);
    /* Poll */
    C(POLLIN); C(POLLPRI); C(POLLOUT); C(POLLERR); C(POLLHUP); C(POLLNVAL); C(POLLRDHUP);
    L(POLLFD_SIZE, sizeof(struct pollfd));
    /* UnixSocket */
    C(AF_UNIX); C(SOCK_STREAM); C(SOCK_DGRAM); C(SOCK_SEQPACKET); C(SOCK_NONBLOCK); C(SOCK_CLOEXEC);
    C(SOL_SOCKET); C(SCM_RIGHTS); C(MSG_TRUNC); C(MSG_CTRUNC); C(MSG_DONTWAIT); C(MSG_WAITALL);
    C(MSG_NOSIGNAL); C(MSG_CMSG_CLOEXEC);
    L(MSGHDR_SIZE, sizeof(struct msghdr)); L(MSG_IOV, offsetof(struct msghdr, msg_iov));
    L(MSG_IOVLEN, offsetof(struct msghdr, msg_iovlen)); L(MSG_CONTROL, offsetof(struct msghdr, msg_control));
    L(MSG_CONTROLLEN, offsetof(struct msghdr, msg_controllen)); L(MSG_FLAGS, offsetof(struct msghdr, msg_flags));
    L(IOVEC_SIZE, sizeof(struct iovec)); L(CMSGHDR_SIZE, CMSG_LEN(0));
    L(CMSG_LEVEL, offsetof(struct cmsghdr, cmsg_level)); L(CMSG_TYPE, offsetof(struct cmsghdr, cmsg_type));
    L(CMSG_SPACE_1_FD, CMSG_SPACE(sizeof(int))); L(CMSG_SPACE_3_FDS, CMSG_SPACE(3 * sizeof(int)));
    L(SOCKADDR_UN_SIZE, sizeof(struct sockaddr_un)); L(SUN_PATH, offsetof(struct sockaddr_un, sun_path));
    N(MAX_PATH_BYTES, sizeof(((struct sockaddr_un *) 0)->sun_path) - 1);
    /* Ioctl (encoders are checked against these) */
    C(FIONREAD); C(FIOCLEX); C(FIONBIO);
    L(IO_81_7F, _IO(0x81, 0x7f)); L(IOR_81_00_8, _IOR(0x81, 0x00, unsigned long long));
    L(IOW_81_02_88, _IOW(0x81, 0x02, char[0x88])); L(IOWR_81_10_38, _IOWR(0x81, 0x10, char[0x38]));
    /* VhostIoctl */
    C(VHOST_VIRTIO); C(VHOST_GET_FEATURES); C(VHOST_SET_FEATURES); C(VHOST_SET_OWNER); C(VHOST_RESET_OWNER);
    C(VHOST_SET_VRING_NUM); C(VHOST_SET_VRING_ADDR); C(VHOST_SET_VRING_BASE); C(VHOST_GET_VRING_BASE);
    C(VHOST_SET_VRING_KICK); C(VHOST_SET_VRING_CALL); C(VHOST_SET_BACKEND_FEATURES); C(VHOST_GET_BACKEND_FEATURES);
    C(VHOST_VDPA_GET_DEVICE_ID); C(VHOST_VDPA_GET_STATUS); C(VHOST_VDPA_SET_STATUS); C(VHOST_VDPA_GET_CONFIG);
    C(VHOST_VDPA_SET_CONFIG); C(VHOST_VDPA_SET_VRING_ENABLE); C(VHOST_VDPA_GET_VRING_NUM);
    C(VHOST_VDPA_GET_IOVA_RANGE); C(VHOST_VDPA_GET_CONFIG_SIZE); C(VHOST_VDPA_GET_VQS_COUNT);
    C(VHOST_VDPA_SET_CONFIG_CALL);
    N(VDPA_CONFIG_OFF, offsetof(struct vhost_vdpa_config, off)); N(VDPA_CONFIG_LEN, offsetof(struct vhost_vdpa_config, len));
    N(VDPA_CONFIG_HEADER, offsetof(struct vhost_vdpa_config, buf));
    N(VDPA_IOVA_RANGE_FIRST, offsetof(struct vhost_vdpa_iova_range, first));
    N(VDPA_IOVA_RANGE_LAST, offsetof(struct vhost_vdpa_iova_range, last));
    N(VDPA_IOVA_RANGE_SIZE, sizeof(struct vhost_vdpa_iova_range));
    /* Syscall */
    N(IO_URING_SETUP, SYS_io_uring_setup); N(IO_URING_ENTER, SYS_io_uring_enter);
    N(IO_URING_REGISTER, SYS_io_uring_register);
    /* Affinity */
    L(CPU_SET_BYTES, sizeof(cpu_set_t));

    E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(E2BIG); E(ENOEXEC); E(EBADF);
    E(ECHILD); E(EAGAIN); E(ENOMEM); E(EACCES); E(EFAULT); E(ENOTBLK); E(EBUSY); E(EEXIST);
    E(EXDEV); E(ENODEV); E(ENOTDIR); E(EISDIR); E(EINVAL); E(ENFILE); E(EMFILE); E(ENOTTY);
    E(ETXTBSY); E(EFBIG); E(ENOSPC); E(ESPIPE); E(EROFS); E(EMLINK); E(EPIPE); E(EDOM); E(ERANGE);
    E(EDEADLK); E(ENAMETOOLONG); E(ENOLCK); E(ENOSYS); E(ENOTEMPTY); E(ELOOP); E(ENOMSG);
    E(EIDRM); E(ECHRNG); E(EL2NSYNC); E(EL3HLT); E(EL3RST); E(ELNRNG); E(EUNATCH); E(ENOCSI);
    E(EL2HLT); E(EBADE); E(EBADR); E(EXFULL); E(ENOANO); E(EBADRQC); E(EBADSLT); E(EBFONT);
    E(ENOSTR); E(ENODATA); E(ETIME); E(ENOSR); E(ENONET); E(ENOPKG); E(EREMOTE); E(ENOLINK);
    E(EADV); E(ESRMNT); E(ECOMM); E(EPROTO); E(EMULTIHOP); E(EDOTDOT); E(EBADMSG); E(EOVERFLOW);
    E(ENOTUNIQ); E(EBADFD); E(EREMCHG); E(ELIBACC); E(ELIBBAD); E(ELIBSCN); E(ELIBMAX);
    E(ELIBEXEC); E(EILSEQ); E(ERESTART); E(ESTRPIPE); E(EUSERS); E(ENOTSOCK); E(EDESTADDRREQ);
    E(EMSGSIZE); E(EPROTOTYPE); E(ENOPROTOOPT); E(EPROTONOSUPPORT); E(ESOCKTNOSUPPORT);
    E(EOPNOTSUPP); E(EPFNOSUPPORT); E(EAFNOSUPPORT); E(EADDRINUSE); E(EADDRNOTAVAIL);
    E(ENETDOWN); E(ENETUNREACH); E(ENETRESET); E(ECONNABORTED); E(ECONNRESET); E(ENOBUFS);
    E(EISCONN); E(ENOTCONN); E(ESHUTDOWN); E(ETOOMANYREFS); E(ETIMEDOUT); E(ECONNREFUSED);
    E(EHOSTDOWN); E(EHOSTUNREACH); E(EALREADY); E(EINPROGRESS); E(ESTALE); E(EUCLEAN);
    E(ENOTNAM); E(ENAVAIL); E(EISNAM); E(EREMOTEIO); E(EDQUOT); E(ENOMEDIUM); E(EMEDIUMTYPE);
    E(ECANCELED); E(ENOKEY); E(EKEYEXPIRED); E(EKEYREVOKED); E(EKEYREJECTED); E(EOWNERDEAD);
    E(ENOTRECOVERABLE); E(ERFKILL); E(EHWPOISON);
    return 0;
}
