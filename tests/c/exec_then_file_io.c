/* Holds a close-on-exec TCP connection, execs itself, and the new image
 * writes an HTTP request into a file and reads an HTTP response back from it,
 * on the fd number the socket had. Linked statically so that no dynamic
 * loader opens (and closes) files on that number first: the new image's
 * first syscalls are these. Built by tests/tests/no_file_io.rs.
 *
 *   exec_then_file_io PORT FILE REQUEST     GET /before-exec, then exec:
 *   exec_then_file_io --after FILE REQUEST  the file I/O; prints "fds OLD NEW" */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int after_exec(const char *old_fd, const char *path, const char *request)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char buf[4096];
	for (int i = 0; i < 20; i++) {
		size_t n = strlen(request);
		if (lseek(fd, 0, SEEK_SET) != 0 || write(fd, request, n) != (ssize_t)n ||
		    read(fd, buf, sizeof(buf)) <= 0) {
			perror("file I/O");
			return 1;
		}
	}
	printf("fds %s %d\n", old_fd, fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT FILE REQUEST | --after FILE REQUEST\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "--after"))
		return after_exec(getenv("OLD_FD"), argv[2], argv[3]);

	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
	inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("connect");
		return 1;
	}
	const char *get = "GET /before-exec HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char buf[4096];
	if (write(s, get, strlen(get)) != (ssize_t)strlen(get) || read(s, buf, sizeof(buf)) <= 0) {
		perror("request");
		return 1;
	}
	char fd[16];
	snprintf(fd, sizeof(fd), "%d", s);
	setenv("OLD_FD", fd, 1);
	/* The connection stays open: close-on-exec ends it, with no close() call. */
	char *args[] = { argv[0], "--after", argv[2], argv[3], NULL };
	execv("/proc/self/exe", args);
	perror("execv");
	return 1;
}
