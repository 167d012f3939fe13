// A static HTTP/1.1 server answering every connection with the hello body, then closing
// it (and saying so, so clients reconnect cleanly): the runc side of the benchmarks (containerd's and the cluster's).
// As PID 1 it must handle SIGTERM itself (the kernel ignores it otherwise) to stop promptly.
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGTERM, stop);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 64);
    const char *r = "HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\nhello from spore\n";
    for (;;) { int c = accept(s, 0, 0); char b[4096]; read(c, b, sizeof b); write(c, r, strlen(r)); close(c); }
}
