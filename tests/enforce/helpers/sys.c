/* Issue raw syscalls with exact argument registers and print what came back.
 * Usage: sys NR[:A0[:A1...]] ...   (numbers in C syntax: 12, 0x1f, -1)
 * One line per call: "NR ret=R errno=E". Syscall numbers come from the test (libseccomp),
 * never from this file. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        unsigned long v[7] = {0};
        char *s = argv[i], *end;
        int n = 0;
        while (n < 7) {
            v[n++] = strtoull(s, &end, 0);
            if (*end != ':') break;
            s = end + 1;
        }
        errno = 0;
        long r = syscall((long)v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        printf("%ld ret=%ld errno=%d\n", (long)v[0], r, r < 0 ? errno : 0);
        fflush(stdout);
    }
    return 0;
}
