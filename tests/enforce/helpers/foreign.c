/* Make one syscall through a foreign ABI of the x86_64 kernel and report if we survive.
 * Usage: foreign int80 NR   -> i386 ABI (int $0x80, eax=NR)
 *        foreign x32 NR     -> x32 ABI (syscall instruction, rax = NR, caller sets the x32 bit) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: foreign int80|x32 NR\n"); return 2; }
    long nr = strtol(argv[2], NULL, 0), ret;
    if (strcmp(argv[1], "int80") == 0) {
        __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
    } else {
        __asm__ volatile ("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
    }
    printf("survived ret=%ld\n", ret);
    return 0;
}
