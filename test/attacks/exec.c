/*
 * clawos-attack-exec: what an agent tries to start another program when its
 * whitelist does not allow execve. Built dynamic on purpose: a dynamic
 * agent's ELF interpreter (ld.so) must stay executable for its own start, the
 * opening the loader attack uses. Each operation tries once and reports like
 * clawos-probe ("ok" or "errno N NAME", exit status the errno); a program it
 * manages to start prints "escaped" and exits 66.
 *
 *   clawos-attack-exec ldso PROG      execve(ld.so, [ld.so, PROG]): the loader maps PROG itself
 *   clawos-attack-exec ldso-tmp PROG  copy PROG to /tmp (writable), then run it through ld.so
 *   clawos-attack-exec memfd PROG     copy PROG into a memfd, execve("/proc/self/fd/N")
 *   clawos-attack-exec guess          map "/bin/sh" at a random address, execve() it
 *   clawos-attack-exec direct PROG    execve(PROG)
 *   clawos-attack-exec copy PROG DEST copy PROG to DEST (mode 0755), then execve(DEST)
 *   clawos-attack-exec escaped        print "escaped", exit 66 (the program the attacks start)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static void report(long err) {
	char buf[64];
	int len = err ? snprintf(buf, sizeof buf, "errno %ld %s\n", err, strerrorname_np((int)err)) : snprintf(buf, sizeof buf, "ok\n");
	syscall(SYS_write, 1, buf, len);
	syscall(SYS_exit_group, (int)err);
}

/* copy_to copies the file at src to fd, reporting (and exiting) on error. */
static void copy_to(const char *src, int fd) {
	if (fd < 0)
		report(errno);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		report(errno);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(fd, buf, (size_t)n) != n)
			report(errno);
	close(in);
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 125;
	const char *op = argv[1];
	if (strcmp(op, "escaped") == 0) {
		syscall(SYS_write, 1, "escaped\n", 8);
		syscall(SYS_exit_group, 66);
	}
	if (strcmp(op, "ldso") == 0 && argc > 2) {
		const char *loader = sizeof(void *) == 8 && access("/lib64/ld-linux-x86-64.so.2", F_OK) == 0 ? "/lib64/ld-linux-x86-64.so.2"
		                                                                                             : "/lib/ld-linux-aarch64.so.1";
		char *args[] = { (char *)loader, argv[2], "escaped", NULL };
		syscall(SYS_execve, loader, args, environ);
		report(errno);
	}
	if (strcmp(op, "ldso-tmp") == 0 && argc > 2) {
		int out = open("/tmp/payload", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
		copy_to(argv[2], out);
		close(out);
		const char *loader = access("/lib64/ld-linux-x86-64.so.2", F_OK) == 0 ? "/lib64/ld-linux-x86-64.so.2" : "/lib/ld-linux-aarch64.so.1";
		char *args[] = { (char *)loader, "/tmp/payload", "escaped", NULL };
		syscall(SYS_execve, loader, args, environ);
		report(errno);
	}
	if (strcmp(op, "memfd") == 0 && argc > 2) {
		int fd = (int)syscall(SYS_memfd_create, "payload", 0);
		copy_to(argv[2], fd);
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		char *args[] = { path, "escaped", NULL };
		syscall(SYS_execve, path, args, environ);
		report(errno);
	}
	if (strcmp(op, "guess") == 0) {
		unsigned long r;
		if (syscall(SYS_getrandom, &r, sizeof r, 0) != sizeof r)
			report(errno);
		unsigned long page = (1UL << 40) + (r % ((0x700000000000UL - (1UL << 40)) / 4096)) * 4096;
		char *p = (char *)syscall(SYS_mmap, page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			report(errno);
		strcpy(p, "/bin/sh");
		char *args[] = { p, "-c", "echo escaped; exit 66", NULL };
		syscall(SYS_execve, p, args, environ);
		report(errno);
	}
	if (strcmp(op, "copy") == 0 && argc > 3) {
		int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
		copy_to(argv[2], out);
		close(out);
		char *args[] = { argv[3], "escaped", NULL };
		syscall(SYS_execve, argv[3], args, environ);
		report(errno);
	}
	if (strcmp(op, "direct") == 0 && argc > 2) {
		char *args[] = { argv[2], "escaped", NULL };
		syscall(SYS_execve, argv[2], args, environ);
		report(errno);
	}
	fprintf(stderr, "clawos-attack-exec: unknown operation %s\n", op);
	return 125;
}
