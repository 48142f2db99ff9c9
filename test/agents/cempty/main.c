/* An empty static C program: the start baseline is measured on it (what
 * static glibc needs from execve to main and from main to exit). */
int main(void) { return 0; }
