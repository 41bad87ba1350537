// Linux's epoll for the parked mode (Glibc's Swift module leaves sys/epoll.h out).
#include <sys/epoll.h>
