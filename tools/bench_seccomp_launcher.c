/* Minimal launcher for tools/bench_enforce.py: load a raw seccomp-bpf program (as written by
 * `tinyjail compile -o`) and exec a command, so the filter's per-syscall cost can be measured
 * without tinyjail's Python start-up. Usage: launcher FILTER.bpf|- CMD [ARGS...] ("-": no filter). */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s FILTER.bpf|- CMD [ARGS...]\n", argv[0]); return 2; }
    if (strcmp(argv[1], "-") != 0) {
        static struct sock_filter insns[BPF_MAXINSNS];
        FILE *f = fopen(argv[1], "rb");
        if (!f) { perror(argv[1]); return 125; }
        size_t n = fread(insns, sizeof insns[0], BPF_MAXINSNS, f);
        fclose(f);
        struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
            perror("seccomp");
            return 125;
        }
    }
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
}
