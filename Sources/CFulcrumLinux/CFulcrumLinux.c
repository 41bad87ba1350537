#include "CFulcrumLinux.h"

#ifdef __linux__
#include <malloc.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int cfulcrum_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int cfulcrum_epoll_add(int epfd, int fd, uint64_t data, int oneShot) {
    struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP | (oneShot ? EPOLLONESHOT : 0), .data.u64 = data};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int cfulcrum_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int cfulcrum_epoll_wait(int epfd, uint64_t *data, uint32_t *flags, int capacity, int timeoutMilliseconds) {
    struct epoll_event events[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epfd, events, capacity, timeoutMilliseconds);
    for (int index = 0; index < count; index++) {
        data[index] = events[index].data.u64;
        flags[index] = events[index].events;
    }
    return count;
}

int cfulcrum_epoll_hung_up(uint32_t flags) { return (flags & (EPOLLERR | EPOLLHUP)) != 0; }

int cfulcrum_eventfd_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void cfulcrum_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t written = write(fd, &one, sizeof one);
    (void)written;  // EAGAIN: the counter is already non-zero, so a wake-up is pending
}

void cfulcrum_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t readBytes = read(fd, &value, sizeof value);
    (void)readBytes;
}

void cfulcrum_release_free_memory(void) { malloc_trim(0); }
#endif
