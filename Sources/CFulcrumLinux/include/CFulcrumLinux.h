// Linux calls the parking lot needs (ParkingLot.swift) that Glibc's Swift module does not
// import. Wrapped in plain functions: `struct epoll_event` is packed on x86_64.
#ifndef C_FULCRUM_LINUX_H
#define C_FULCRUM_LINUX_H

#include <stdint.h>

/// epoll_create1(EPOLL_CLOEXEC).
int cfulcrum_epoll_create(void);

/// Adds `fd` to the set, reporting input (and hang-ups) with `data`. `oneShot` disarms it
/// after one event (EPOLLONESHOT).
int cfulcrum_epoll_add(int epfd, int fd, uint64_t data, int oneShot);

/// Removes `fd` from the set.
int cfulcrum_epoll_remove(int epfd, int fd);

/// epoll_wait, with each event's data and flags unpacked into two arrays.
int cfulcrum_epoll_wait(int epfd, uint64_t *data, uint32_t *flags, int capacity, int timeoutMilliseconds);

/// Whether `flags` (from cfulcrum_epoll_wait) report an error or a full hang-up.
int cfulcrum_epoll_hung_up(uint32_t flags);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int cfulcrum_eventfd_create(void);

/// Adds one to an eventfd (wakes a thread waiting on it).
void cfulcrum_eventfd_signal(int fd);

/// Resets an eventfd to zero.
void cfulcrum_eventfd_drain(int fd);

/// malloc_trim(0): gives the pages of free memory in every malloc arena back to the system.
void cfulcrum_release_free_memory(void);

#endif
