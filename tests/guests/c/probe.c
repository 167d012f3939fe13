/* Spore test probe (C, WASI preview1 core module).
 * See tests/guests/README.md for the protocol. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int fail(const char *what, const char *arg) {
    fflush(stdout);
    if (arg)
        fprintf(stderr, "error: %s %s: %s\n", what, arg, strerror(errno));
    else
        fprintf(stderr, "error: %s\n", what);
    return 1;
}

static int usage(const char *msg) {
    fflush(stdout);
    fprintf(stderr, "error: %s\n", msg);
    return 1;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int cmd_read(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail("open", path);
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno; close(fd); errno = e;
            return fail("read", path);
        }
        if (n == 0) break;
        fflush(stdout);
        if (write_all(1, buf, (size_t)n) < 0) return fail("write", "stdout");
    }
    close(fd);
    return 0;
}

static int cmd_write(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return fail("open", path);
    if (write_all(fd, text, strlen(text)) < 0) {
        int e = errno; close(fd); errno = e;
        return fail("write", path);
    }
    if (close(fd) < 0) return fail("close", path);
    printf("wrote %s\n", path);
    return 0;
}

static int cmd_ls(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return fail("opendir", dir);
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    if (!names) return usage("out of memory");
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if (n == cap) {
            cap *= 2;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) return usage("out of memory");
            names = nn;
        }
        names[n] = strdup(ent->d_name);
        if (!names[n]) return usage("out of memory");
        n++;
        errno = 0;
    }
    if (errno) {
        int e = errno; closedir(d); errno = e;
        return fail("readdir", dir);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) printf("%s\n", names[i]);
    return 0;
}

#define MIB ((size_t)1 << 20)

static int cmd_alloc(const char *arg) {
    long mb;
    if (parse_long(arg, &mb) < 0 || mb < 0) return usage("alloc: bad MB argument");
    /* Chunks form a linked list through their first word so they stay alive. */
    void *head = NULL;
    for (long i = 0; i < mb; i++) {
        char *chunk = malloc(MIB);
        if (!chunk) {
            printf("alloc failed after %ld MiB\n", i);
            fflush(stdout);
            return 2;
        }
        memset(chunk, 0xA5, MIB);
        *(void **)chunk = head;
        head = chunk;
    }
    /* Keep the list observable so the allocations cannot be elided. */
    __asm__ volatile("" : : "r"(head) : "memory");
    printf("allocated %ld MiB\n", mb);
    return 0;
}

static int cmd_loop(void) {
    volatile uint64_t counter = 0;
    for (;;) counter++;
    return 0;
}

static int cmd_sleep(const char *arg) {
    long ms;
    if (parse_long(arg, &ms) < 0 || ms < 0) return usage("sleep: bad MS argument");
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0) {
        if (errno != EINTR) return fail("nanosleep", arg);
    }
    printf("slept %ld\n", ms);
    return 0;
}

static int cmd_stdin(void) {
    char buf[8192];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("read", "stdin");
        }
        if (n == 0) return 0;
        if (write_all(1, buf, (size_t)n) < 0) return fail("write", "stdout");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return usage("usage: probe COMMAND [ARGS...]");
    const char *cmd = argv[1];

    if (!strcmp(cmd, "echo")) {
        for (int i = 2; i < argc; i++) {
            if (i > 2) fputc(' ', stdout);
            fputs(argv[i], stdout);
        }
        fputc('\n', stdout);
        return 0;
    }
    if (!strcmp(cmd, "args")) {
        for (int i = 0; i < argc; i++) printf("%s\n", argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "env")) {
        if (argc < 3) return usage("usage: env NAME");
        const char *v = getenv(argv[2]);
        if (!v) {
            printf("%s is unset\n", argv[2]);
            return 3;
        }
        printf("%s=%s\n", argv[2], v);
        return 0;
    }
    if (!strcmp(cmd, "envall")) {
        for (char **e = environ; e && *e; e++) printf("%s\n", *e);
        return 0;
    }
    if (!strcmp(cmd, "read")) {
        if (argc < 3) return usage("usage: read PATH");
        return cmd_read(argv[2]);
    }
    if (!strcmp(cmd, "write")) {
        if (argc < 4) return usage("usage: write PATH TEXT");
        return cmd_write(argv[2], argv[3]);
    }
    if (!strcmp(cmd, "ls")) {
        if (argc < 3) return usage("usage: ls DIR");
        return cmd_ls(argv[2]);
    }
    if (!strcmp(cmd, "alloc")) {
        if (argc < 3) return usage("usage: alloc MB");
        return cmd_alloc(argv[2]);
    }
    if (!strcmp(cmd, "loop")) return cmd_loop();
    if (!strcmp(cmd, "sleep")) {
        if (argc < 3) return usage("usage: sleep MS");
        return cmd_sleep(argv[2]);
    }
    if (!strcmp(cmd, "exit")) {
        long n;
        if (argc < 3 || parse_long(argv[2], &n) < 0) return usage("usage: exit N");
        fflush(stdout);
        exit((int)n);
    }
    if (!strcmp(cmd, "trap")) {
        fflush(stdout);
        __builtin_trap();
    }
    if (!strcmp(cmd, "stdin")) return cmd_stdin();

    fflush(stdout);
    fprintf(stderr, "error: unknown command %s\n", cmd);
    return 1;
}
