/*
 * clawos-attack-tfo: a TCP connection that does not call connect. With
 * MSG_FASTOPEN, sendto on an unconnected TCP socket opens the connection
 * itself (TCP Fast Open), a path that an LSM hook on connect alone would
 * not see. The port rules must refuse it as they refuse connect.
 *
 *   clawos-attack-tfo PORT [connect]
 *
 * Listens on 127.0.0.1:PORT (bind), then sends one byte to it with
 * MSG_FASTOPEN from a new TCP socket (with "connect": the other way in,
 * TCP_FASTOPEN_CONNECT then connect and write). Prints "connected" and
 * exits 0 when the connection was made; otherwise prints the errno and
 * exits with it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static int fail(const char *what) {
	int e = errno;
	printf("errno %d %s (%s)\n", e, strerror(e), what);
	return e ? e : 1;
}

int main(int argc, char **argv) {
	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "connect") == 0))
		return fprintf(stderr, "usage: clawos-attack-tfo PORT [connect]\n"), 2;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		return fail("socket");
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) != 0)
		return fail("bind");
	if (listen(l, 1) != 0)
		return fail("listen");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0)
		return fail("socket");
	if (argc == 3) {
		if (setsockopt(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) != 0)
			return fail("TCP_FASTOPEN_CONNECT");
		if (connect(c, (struct sockaddr *)&a, sizeof a) != 0)
			return fail("connect");
		if (write(c, "x", 1) != 1)
			return fail("write");
	} else if (sendto(c, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a) < 0) {
		return fail("sendto MSG_FASTOPEN");
	}
	printf("connected\n");
	return 0;
}
