/* An HTTP/1.1 client whose socket I/O goes through io_uring only (raw
 * io_uring_setup/io_uring_enter, no liburing): connect() is a plain syscall,
 * every send and recv an IORING_OP_SEND/RECV. For tests/tests/io_uring.rs.
 *
 *   io_uring_client PORT PREFIX N
 *
 * Sends N keep-alive requests "GET PREFIX/i" to 127.0.0.1:PORT, reading each
 * response (head, then Content-Length bytes); prints "ok N" and exits 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void setup(struct ring *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		die("io_uring_setup");
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		die("mmap sq");
	char *cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			die("mmap cq");
	}
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		die("mmap sqes");
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* One operation, submitted and waited for; its result. */
static int run(struct ring *r, int op, int fd, void *buf, unsigned len)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *s = &r->sqes[idx];
	memset(s, 0, sizeof(*s));
	s->opcode = op;
	s->fd = fd;
	s->addr = (uint64_t)(uintptr_t)buf;
	s->len = len;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	unsigned submit = 1;
	for (;;) {
		unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
		if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
			int res = r->cqes[head & *r->cq_mask].res;
			__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
			return res;
		}
		if (syscall(__NR_io_uring_enter, r->fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
			die("io_uring_enter");
		submit = 0;
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT PREFIX N\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[3]);
	struct ring r;
	setup(&r);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	static char buf[65536];
	for (int i = 0; i < n; i++) {
		char req[512];
		int len = snprintf(req, sizeof(req), "GET %s/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", argv[2], i);
		if (run(&r, IORING_OP_SEND, fd, req, (unsigned)len) != len)
			die("send");
		size_t have = 0;
		long want = -1;
		while (want < 0 || have < (size_t)want) {
			int got = run(&r, IORING_OP_RECV, fd, buf + have, (unsigned)(sizeof(buf) - 1 - have));
			if (got <= 0)
				die("recv");
			have += (size_t)got;
			buf[have] = 0;
			char *end = strstr(buf, "\r\n\r\n");
			if (want < 0 && end) {
				char *cl = strcasestr(buf, "Content-Length:");
				want = (end - buf) + 4 + (cl && cl < end ? atol(cl + 15) : 0);
			}
		}
	}
	printf("ok %d\n", n);
	return 0;
}
