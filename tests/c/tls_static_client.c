/* An HTTPS client with OpenSSL linked in statically (its SSL_* functions are
 * in the executable, not in a libssl): GETs each path on one keep-alive TLS
 * connection and prints its local port, then each status code. Built by
 * tests/src/tls.rs for tests/tests/tls.rs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_response(SSL *ssl)
{
	char buf[8192];
	size_t have = 0;
	char *end = NULL;
	while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
		if (have == sizeof(buf))
			return -1;
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have));
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	int status = atoi(buf + 9);
	char *cl = strcasestr(buf, "\r\ncontent-length:");
	long body = cl && cl < end ? atol(cl + 17) : 0;
	long got = (long)(have - (size_t)(end + 4 - buf));
	while (got < body) {
		int n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		got += n;
	}
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s PORT DELAY_MS PATH...\n", argv[0]);
		return 2;
	}
	usleep((useconds_t)atoi(argv[2]) * 1000);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		return 1;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		fprintf(stderr, "handshake failed\n");
		return 1;
	}
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	getsockname(fd, (struct sockaddr *)&me, &len);
	printf("%d", ntohs(me.sin_port));
	for (int i = 3; i < argc; i++) {
		char req[512];
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n", argv[i], argv[1]);
		size_t written = 0;
		if (SSL_write_ex(ssl, req, (size_t)n, &written) != 1) {
			fprintf(stderr, "write failed\n");
			return 1;
		}
		printf(" %d", read_response(ssl));
	}
	printf("\n");
	SSL_shutdown(ssl);
	close(fd);
	return 0;
}
