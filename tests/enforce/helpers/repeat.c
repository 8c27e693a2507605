/* Make the syscall NR exactly COUNT times (complain-mode counting). Usage: repeat NR COUNT */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long nr = strtol(argv[1], NULL, 0), count = strtol(argv[2], NULL, 0);
    for (long i = 0; i < count; i++) syscall(nr);
    printf("made %ld calls\n", count);
    return 0;
}
