/* SCMP_ACT_KILL_THREAD check: a second thread makes the syscall NR and dies; the main thread
 * lives on and says so. Usage: thread_kill NR */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long nr;
static void *worker(void *arg) { (void)arg; syscall(nr); return (void *)1; }

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    nr = strtol(argv[1], NULL, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) { perror("pthread_create"); return 3; }
    pthread_join(t, NULL);
    printf("main thread alive\n");
    return 0;
}
