/* Syscalls made through libc wrappers that are not leaf functions, from nested functions built
 * with frame pointers (test_unwind_trace.py).
 *
 * A second thread makes libc take its multi-threaded paths: open64, write and poll then set up a
 * stack frame around the syscall (return address at sp+0x78, sp+0x28...) and open64 keeps the
 * path in rbp, so the kernel's frame-pointer walk cannot find leaf_* -> middle_* -> main.
 * getppid stays a leaf wrapper (return address at sp).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

static int gate[2];

static void *waiter(void *arg)
{
    char c;
    (void)arg;
    return read(gate[0], &c, 1) == 1 ? NULL : arg;
}

__attribute__((noinline)) static int leaf_open(const char *path)
{
    return open(path, O_RDONLY); /* OPEN_CALL */
}

__attribute__((noinline)) static int middle_open(const char *path)
{
    return leaf_open(path) + 0; /* MIDDLE_OPEN */
}

__attribute__((noinline)) static void leaf_write(int fd)
{
    if (write(fd, "x", 1) != 1) /* WRITE_CALL */
        _exit(4);
}

__attribute__((noinline)) static void middle_write(int fd)
{
    leaf_write(fd); /* MIDDLE_WRITE */
}

__attribute__((noinline)) static void leaf_poll(void)
{
    struct pollfd none = {.fd = -1};
    poll(&none, 1, 0); /* POLL_CALL */
}

__attribute__((noinline)) static void middle_poll(void)
{
    leaf_poll(); /* MIDDLE_POLL */
}

int main(void)
{
    pthread_t t;
    if (pipe(gate) != 0 || pthread_create(&t, NULL, waiter, NULL) != 0)
        return 1;
    int fd = middle_open("/etc/hostname"); /* MAIN_OPEN */
    if (fd >= 0)
        close(fd);
    middle_write(gate[1]); /* MAIN_WRITE */
    middle_poll(); /* MAIN_POLL */
    getppid(); /* MAIN_GETPPID */
    pthread_join(t, NULL);
    return 0;
}
