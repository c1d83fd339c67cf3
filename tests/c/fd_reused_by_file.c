/* Holds a TCP connection, then makes its fd number a file's without a
 * close() call, and writes an HTTP request into the file and reads an HTTP
 * response back from it on that number. Two ways:
 *
 *   fd_reused_by_file PORT FILE REQUEST exec   the socket is close-on-exec;
 *       the program execs itself, and the new image opens the file;
 *   fd_reused_by_file PORT FILE REQUEST dup2   dup2() puts the file on it;
 *   fd_reused_by_file PORT FILE REQUEST close_range   close_range() closes
 *       it, and open() takes the lowest free number: its.
 *
 * Prints "fds SOCKET FILE". Linked statically so that no dynamic loader
 * opens (and closes) files on that number first: after the exec, the new
 * image's first syscalls are these. Built by tests/tests/no_file_io.rs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int file_io(const char *old_fd, int fd, const char *request)
{
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
	const char *how = argc == 5 ? argv[4] : "";
	if (strcmp(how, "exec") && strcmp(how, "dup2") && strcmp(how, "close_range") && strcmp(how, "--after")) {
		fprintf(stderr, "usage: %s PORT FILE REQUEST exec|dup2|close_range\n", argv[0]);
		return 2;
	}
	if (!strcmp(how, "--after")) {
		int file = open(argv[2], O_RDWR);
		if (file < 0) {
			perror("open");
			return 1;
		}
		return file_io(getenv("OLD_FD"), file, argv[3]);
	}

	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
	inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("connect");
		return 1;
	}
	const char *get = "GET /before-reuse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char buf[4096];
	if (write(s, get, strlen(get)) != (ssize_t)strlen(get) || read(s, buf, sizeof(buf)) <= 0) {
		perror("request");
		return 1;
	}
	char fd[16];
	snprintf(fd, sizeof(fd), "%d", s);
	if (!strcmp(how, "dup2")) {
		int file = open(argv[2], O_RDWR);
		if (file < 0 || dup2(file, s) != s) {
			perror("open and dup2");
			return 1;
		}
		return file_io(fd, s, argv[3]);
	}
	if (!strcmp(how, "close_range")) {
		if (close_range(s, s, 0)) {
			perror("close_range");
			return 1;
		}
		int file = open(argv[2], O_RDWR);
		if (file < 0) {
			perror("open");
			return 1;
		}
		return file_io(fd, file, argv[3]);
	}
	setenv("OLD_FD", fd, 1);
	/* The connection stays open: close-on-exec ends it, with no close() call. */
	char *args[] = { argv[0], argv[1], argv[2], argv[3], "--after", NULL };
	execv("/proc/self/exe", args);
	perror("execv");
	return 1;
}
