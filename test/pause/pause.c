/*
 * clawos-pause: the pod sandbox program of the CRI tests, a static
 * equivalent of Kubernetes' pause (build/pause/linux/pause.c): it holds the
 * pod's namespaces, reaps orphans it inherits and exits on SIGINT or
 * SIGTERM. Built locally because this machine reaches no registry.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(int sig) { _exit(128 + sig); }

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = die;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return 1;
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return 2;
	for (;;)
		pause();
}
