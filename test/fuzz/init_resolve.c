/*
 * clawos-init's command resolver (--exec-cmd, the hook's path) as a
 * program, for the differential test against clawos-run's Go resolver
 * (TestResolversAgree): for each CMD it prints the chain execve opens,
 * CMD and its interpreters, tab-separated, as clawos-init resolves it
 * inside a container (PATH from the environment), or "error". Built with
 * the sanitizers.
 *
 *   init_resolve CMD...
 */
#define CLAWOS_INIT_NO_MAIN
#include "../../cmd/clawos-init/init.c"

int main(int argc, char **argv) {
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	for (int i = 1; i < argc; i++) {
		int n = resolve_cmd(argv[i]);
		if (n < 0) {
			printf("error\n");
			continue;
		}
		for (int k = 0; k < n; k++)
			printf("%s%s", k ? "\t" : "", resolved[k]);
		printf("\n");
	}
	fclose(stderr);
	stderr = saved;
	return 0;
}
