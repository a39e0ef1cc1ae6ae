/* The floor of an exec check: posix_spawn /bin/true and waitpid for it, N times, nothing else.
 * Prints the parent's own CPU per spawn (getrusage(RUSAGE_SELF) user+system, which the kernel
 * scales to the precise run time; children are RUSAGE_CHILDREN, not counted) and its context
 * switches per spawn. Built and run by bench/bench.py in the same run as the probes.
 * With PAUSE_US, sleeps that long after each spawn (paced like a probe's checks: a spawn from
 * cold caches costs more than one in a tight loop); the sleep's own wake-up is counted.
 * Usage: floor N [PROGRAM [PAUSE_US]] */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int pause_us = argc > 3 ? atoi(argv[3]) : 0;
    char *program = argc > 2 ? argv[2] : "/bin/true";
    char *args[] = {program, NULL};
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, program, NULL, NULL, args, environ) != 0) return 1;
        if (waitpid(pid, &status, 0) != pid) return 1;
        if (pause_us) usleep(pause_us);
    }
    getrusage(RUSAGE_SELF, &after);
    double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_stime);
    long switches = after.ru_nvcsw - before.ru_nvcsw + after.ru_nivcsw - before.ru_nivcsw;
    printf("%d %.9f %ld\n", n, cpu, switches);
    return 0;
}
