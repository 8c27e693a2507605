/* SCMP_ACT_TRAP check: a SIGSYS handler reports the trapped syscall number, then we exit 0.
 * Usage: trap NR */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_sigsys(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "SIGSYS %d syscall=%d arch=%#x\n", sig, info->si_syscall, info->si_arch);
    write(1, buf, n);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    syscall(strtol(argv[1], NULL, 0));
    printf("no trap\n");
    return 1;
}
