/* Re-exec through /proc/self/exe, the way runc, Go programs and busybox-style tools do.
 *
 * main forks; the child execs /proc/self/exe with the argument "child"; the new image calls
 * child_work, which makes exactly 3 getsid(0) calls; the parent waits and exits with the
 * child's status.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void child_work(void)
{
    for (int i = 0; i < 3; i++)
        getsid(0); /* CHILD_CALL */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        child_work();
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "child", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
