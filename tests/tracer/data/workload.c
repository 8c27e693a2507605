/* A workload with a known syscall mix, for the recorder tests.
 *
 * main: 1000 getppid(), one openat of a missing file (ENOENT), one of /etc/hostname;
 * a thread: 5 getgid(); a forked child living ~1 ms: exactly 7 getuid() then _exit(0);
 * exits with status 3.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *thread_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        getgid();
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 1000; i++)
        getppid(); /* GETPPID_CALL */
    int fd = open("/nonexistent-tinyjail-test", O_RDONLY);
    fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0)
        close(fd);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 7; i++)
            getuid();
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return 3;
}
