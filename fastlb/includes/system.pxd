# System calls and C types used by the worker loop, declared once (uvloop's includes/ idea).

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t


cdef extern from "<errno.h>" nogil:
    int errno
    enum:
        EAGAIN
        EWOULDBLOCK
        EINTR
        EINPROGRESS
        ECONNREFUSED
        ECONNRESET
        EPIPE
        EMFILE
        ENFILE
        ENOBUFS
        ENOMEM
        ECONNABORTED
        ETIMEDOUT
        EHOSTUNREACH
        ENETUNREACH


cdef extern from "<unistd.h>" nogil:
    int close(int fd)
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int getppid()


cdef extern from "<fcntl.h>" nogil:
    int fcntl(int fd, int cmd, ...)
    enum:
        F_GETFL
        F_SETFL
        F_SETPIPE_SZ
        O_NONBLOCK
        O_CLOEXEC
        SPLICE_F_MOVE
        SPLICE_F_NONBLOCK
    # zero-copy relay: socket -> pipe -> socket (Linux)
    ssize_t splice(int fd_in, void *off_in, int fd_out, void *off_out, size_t len,
                   unsigned int flags)
    int pipe2(int pipefd[2], int flags)


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    enum:
        CLOCK_MONOTONIC
        CLOCK_REALTIME
    int clock_gettime(int clk, timespec *tp)


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLLRDHUP
        EPOLLET
        EPOLLEXCLUSIVE
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    enum:
        AF_INET
        AF_INET6
        AF_UNIX
        SOCK_STREAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_ERROR
        SO_KEEPALIVE
        SO_RCVBUF
        SO_SNDBUF
        SHUT_RD
        SHUT_WR
        SHUT_RDWR
        MSG_NOSIGNAL
        MSG_DONTWAIT
        MSG_PEEK
        SO_MARK
        SO_LINGER
        SO_REUSEADDR
        SO_BINDTODEVICE
    struct linger:
        int l_onoff
        int l_linger
    int socket(int domain, int type, int protocol)
    int socketpair(int domain, int type, int protocol, int sv[2])
    # descriptors passed over a UNIX socket (sockpair@ listeners and servers)
    enum:
        SCM_RIGHTS
        MSG_CMSG_CLOEXEC
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr *CMSG_FIRSTHDR(msghdr *msg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    ssize_t recvmsg(int fd, msghdr *msg, int flags)
    ssize_t sendmsg(int fd, const msghdr *msg, int flags)
    int connect(int fd, const sockaddr *addr, socklen_t len)
    int bind(int fd, const sockaddr *addr, socklen_t len)
    int accept4(int fd, sockaddr *addr, socklen_t *len, int flags)
    int shutdown(int fd, int how)
    int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
    int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
    int getsockname(int fd, sockaddr *addr, socklen_t *len)
    ssize_t recv(int fd, void *buf, size_t len, int flags)
    ssize_t send(int fd, const void *buf, size_t len, int flags)


cdef extern from "<netinet/in.h>" nogil:
    enum:
        IPPROTO_TCP
        IPPROTO_IP
        IPPROTO_IPV6
        IP_TOS
        IPV6_TCLASS
        IP_TRANSPARENT          # bind an address this host does not own (usesrc)
        IP_FREEBIND
        IPV6_TRANSPARENT
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct in6_addr:
        uint8_t s6_addr[16]
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        in6_addr sin6_addr
    uint16_t ntohs(uint16_t)
    uint16_t htons(uint16_t)


cdef extern from "<sys/un.h>" nogil:
    struct sockaddr_un:
        sa_family_t sun_family
        char sun_path[108]


cdef extern from "<arpa/inet.h>" nogil:
    enum:
        INET6_ADDRSTRLEN
    int inet_pton(int af, const char *src, void *dst)
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    uint32_t htonl(uint32_t)
    uint32_t ntohl(uint32_t)


cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY
        TCP_QUICKACK
        TCP_FASTOPEN_CONNECT
        TCP_USER_TIMEOUT
        TCP_KEEPCNT
        TCP_KEEPIDLE
        TCP_KEEPINTVL


cdef extern from "<sched.h>" nogil:
    enum:
        CLONE_NEWNET
    int setns(int fd, int nstype)


cdef extern from "<sys/prctl.h>" nogil:
    enum:
        PR_SET_PDEATHSIG
        PR_SET_NO_NEW_PRIVS
    int prctl(int option, unsigned long arg2, unsigned long arg3,
              unsigned long arg4, unsigned long arg5)


cdef extern from "<string.h>" nogil:
    void *memcpy(void *dst, const void *src, size_t n)
    void *memmove(void *dst, const void *src, size_t n)
    void *memset(void *s, int c, size_t n)
    int memcmp(const void *a, const void *b, size_t n)
    char *strerror(int errnum)
    size_t strlen(const char *s)


cdef extern from "<stdio.h>" nogil:
    int snprintf(char *s, size_t n, const char *fmt, ...)


cdef extern from "<stdlib.h>" nogil:
    void *malloc(size_t size)
    void *calloc(size_t n, size_t size)
    void *realloc(void *p, size_t size)
    void free(void *p)
    void abort()


cdef extern from *:
    """
    /* Relaxed atomics on shared-memory counters. */
    static inline uint64_t fl_atomic_fetch_add(uint64_t *p, uint64_t v) {
        return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
    }
    static inline uint64_t fl_atomic_fetch_sub(uint64_t *p, uint64_t v) {
        return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
    }
    static inline uint64_t fl_atomic_load(uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline void fl_atomic_store(uint64_t *p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
    }
    /* 1 when *p held *expected and now holds v; else *expected is what *p holds. */
    static inline int fl_atomic_cas(uint64_t *p, uint64_t *expected, uint64_t v) {
        return __atomic_compare_exchange_n(p, expected, v, 0, __ATOMIC_RELAXED,
                                           __ATOMIC_RELAXED);
    }
    """
    uint64_t fl_atomic_fetch_add(uint64_t *p, uint64_t v) nogil
    uint64_t fl_atomic_fetch_sub(uint64_t *p, uint64_t v) nogil
    uint64_t fl_atomic_load(uint64_t *p) nogil
    void fl_atomic_store(uint64_t *p, uint64_t v) nogil
    int fl_atomic_cas(uint64_t *p, uint64_t *expected, uint64_t v) nogil
