/* The floor of an exec check: posix_spawn /bin/true and waitpid for it, N times, nothing else.
 * Prints the parent's own CPU per spawn (getrusage(RUSAGE_SELF) user+system, which the kernel
 * scales to the precise run time; children are RUSAGE_CHILDREN, not counted) and its context
 * switches per spawn. Built and run by bench/bench.py in the same run as the probes.
 * With PAUSE_US, sleeps that long after each spawn (paced like a probe's checks: a spawn from
 * cold caches costs more than one in a tight loop); the sleep's own wake-up is counted.
 *
 * With `same` as a fourth argument it does, in C, the work an exaprobe-exec check does besides
 * the spawn (bench/exec_floor.py): `sh -c PROGRAM` in a process group of its own, stdin from a
 * kept /dev/null and stdout/stderr into kept pipes (file actions made once), the exit awaited on
 * a pidfd registered with epoll and then reaped (and `waitpid` again, which says there is no other
 * child), the check's timeout armed on a timerfd and the pause slept on it. What exaprobe costs
 * above this is its runtime and its own code, not the kernel work it asks for.
 * Usage: floor N [PROGRAM [PAUSE_US [same]]] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

/* Wait on `epoll` until `fd` is reported. */
static void wait_for(int epoll, int fd) {
    struct epoll_event events[8];
    for (;;) {
        int n = epoll_wait(epoll, events, 8, -1);
        for (int i = 0; i < n; i++)
            if (events[i].data.fd == fd) return;
    }
}

static void arm(int timer, long usec) {
    struct itimerspec when = {.it_value = {usec / 1000000, (usec % 1000000) * 1000}};
    timerfd_settime(timer, 0, &when, NULL);
}

static int same_work(int n, char *script, int pause_us) {
    char *args[] = {"sh", "-c", script, NULL};
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return 1;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event event = {.events = EPOLLIN | EPOLLET};
    int watched[] = {timer, out[0], err[0]};
    for (int i = 0; i < 3; i++) {
        event.data.fd = watched[i];
        epoll_ctl(epoll, EPOLL_CTL_ADD, watched[i], &event);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, null, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, pipe_signal;
    sigemptyset(&none);
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &pipe_signal);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int status;
        if (posix_spawnp(&pid, "sh", &actions, &attributes, args, environ) != 0) return 1;
        int pidfd = syscall(SYS_pidfd_open, pid, O_NONBLOCK);
        if (pidfd < 0) return 1;
        event.data.fd = pidfd;
        epoll_ctl(epoll, EPOLL_CTL_ADD, pidfd, &event);
        arm(timer, 5000000);
        wait_for(epoll, pidfd);
        if (waitpid(-1, &status, WNOHANG) != pid) return 1;
        waitpid(-1, &status, WNOHANG);
        epoll_ctl(epoll, EPOLL_CTL_DEL, pidfd, NULL);
        close(pidfd);
        if (pause_us) {
            arm(timer, pause_us);
            wait_for(epoll, timer);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int pause_us = argc > 3 ? atoi(argv[3]) : 0;
    int same = argc > 4 && strcmp(argv[4], "same") == 0;
    char *program = argc > 2 ? argv[2] : "/bin/true";
    char *args[] = {program, NULL};
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    if (same) {
        if (same_work(n, program, pause_us)) return 1;
    } else {
        for (int i = 0; i < n; i++) {
            pid_t pid;
            int status;
            if (posix_spawn(&pid, program, NULL, NULL, args, environ) != 0) return 1;
            if (waitpid(pid, &status, 0) != pid) return 1;
            if (pause_us) usleep(pause_us);
        }
    }
    getrusage(RUSAGE_SELF, &after);
    double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_stime);
    long switches = after.ru_nvcsw - before.ru_nvcsw + after.ru_nivcsw - before.ru_nivcsw;
    printf("%d %.9f %ld\n", n, cpu, switches);
    return 0;
}
