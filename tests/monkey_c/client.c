/* A C caller of libc's socket calls: connects, sends a line, reads the
   reply. Built by the cc crate in tests/monkey_crates.rs, to show that C
   code cooperates after greenhub::monkey::patch_all(). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int c_roundtrip(unsigned short port, char *out, int cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) { close(fd); return -2; }
    if (send(fd, "ping\n", 5, 0) != 5) { close(fd); return -3; }
    int n = (int)recv(fd, out, (size_t)cap, 0);
    close(fd);
    return n;
}

/* The same with a buffer of known size: built with -D_FORTIFY_SOURCE=2,
   the recv (of a length only known at run time) becomes __recv_chk. */
int c_roundtrip_fortified(unsigned short port, char *out, int cap) {
    char buf[16];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) { close(fd); return -2; }
    if (send(fd, "ping\n", 5, 0) != 5) { close(fd); return -3; }
    /* A length the compiler cannot see: the fortified recv checks it. */
    if (cap > (int)sizeof buf) cap = (int)sizeof buf;
    int n = (int)recv(fd, buf, (size_t)cap, 0);
    close(fd);
    if (n > 0 && n <= cap) memcpy(out, buf, (size_t)n);
    return n;
}
