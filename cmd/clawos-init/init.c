/*
 * clawos-init: the second stage of a ClawOS sandbox. clawos-run mounts it
 * read-only into the container and prefixes it to the agent's command:
 *
 *   clawos-init FILTER.bpf [--exec PATH]... -- CMD [ARGS...]
 *
 * It runs after the OCI runtime has finished starting the container (under
 * the container-level filter), and as its last acts:
 *   1. with --exec (and where the kernel has Landlock), allows execution of
 *      the listed files only (the agent and its ELF interpreter), so that the
 *      execve the whitelist must permit cannot start anything else later;
 *   2. loads FILTER.bpf, the exact whitelist compiled by clawos-run, with
 *      SECCOMP_FILTER_FLAG_TSYNC (it is single-threaded; TSYNC refuses if not);
 *   3. execve(CMD). Filters stack: the agent runs under exactly the whitelist.
 *
 * Errors before step 2 are reported on stderr and exit 127. After step 2 the
 * only calls are execve and, if it fails, exit_group(127).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define MAX_EXEC 16

static int fail(const char *what) {
	fprintf(stderr, "clawos-init: %s: %s\n", what, strerror(errno));
	return 127;
}

/* restrict_exec allows LANDLOCK_ACCESS_FS_EXECUTE on the given files only.
 * Returns 0, or -1 with errno. ENOSYS/EOPNOTSUPP mean no Landlock. */
static int restrict_exec(char **paths, int n) {
	struct landlock_ruleset_attr attr = { .handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE };
	int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rs < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct landlock_path_beneath_attr pb = { .allowed_access = LANDLOCK_ACCESS_FS_EXECUTE };
		pb.parent_fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0)
			return -1;
		if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
			return -1;
		close(pb.parent_fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	if (syscall(SYS_landlock_restrict_self, rs, 0) != 0)
		return -1;
	close(rs);
	return 0;
}

int main(int argc, char **argv) {
	static struct sock_filter insns[BPF_MAXINSNS];
	char *exec_paths[MAX_EXEC];
	int nexec = 0, i = 2;

	if (argc < 4) {
		fprintf(stderr, "usage: clawos-init FILTER.bpf [--exec PATH]... -- CMD [ARGS...]\n");
		return 127;
	}
	for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (strcmp(argv[i], "--exec") != 0 || i + 1 >= argc || nexec == MAX_EXEC) {
			fprintf(stderr, "clawos-init: bad argument %s\n", argv[i]);
			return 127;
		}
		exec_paths[nexec++] = argv[i + 1];
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "clawos-init: no command after --\n");
		return 127;
	}
	char **cmd = &argv[i + 1];

	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(argv[1]);
	ssize_t n = read(fd, insns, sizeof insns);
	if (n <= 0 || n % sizeof(struct sock_filter) != 0) {
		fprintf(stderr, "clawos-init: %s is not a BPF program\n", argv[1]);
		return 127;
	}
	close(fd);

	if (nexec > 0 && restrict_exec(exec_paths, nexec) != 0) {
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return fail("landlock");
		/* No Landlock in this kernel: clawos-run was told by its probe. */
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail("no_new_privs");
	struct sock_fprog prog = { .len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = insns };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
		return fail("seccomp");
	execve(cmd[0], cmd, environ);
	syscall(SYS_exit_group, 127);
	return 127;
}
