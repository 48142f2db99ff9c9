/*
 * Fuzz driver for clawos-init's parsers, which read files of a container
 * image (ELF program headers, #! lines), the agent filter and the port
 * lists: built with
 * -fsanitize=address,undefined by `make fuzz`, so an out-of-bounds read, an
 * overflow or undefined behaviour aborts the run.
 *
 * LLVMFuzzerTestOneInput is libFuzzer's entry point (clang -fsanitize=fuzzer
 * can drive it). Without libFuzzer, main is an AFL-style driver: it runs
 * every file given on the command line, then COUNT deterministic mutations
 * of them (bit flips, byte and 16/32/64-bit field overwrites with boundary
 * values at the ELF header's and program headers' offsets, truncations).
 *
 *   init_fuzz COUNT SEED...
 */
#define CLAWOS_INIT_NO_MAIN
#include "../../cmd/clawos-init/init.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static char out[MAX_PATH];
	/* The interpreter parser, with the output sizes it is used with. */
	if (parse_interp(data, size, out, sizeof out) == 1 && strlen(out) >= sizeof out)
		abort();
	parse_interp(data, size, out, 8);
	/* The inline filter decoder: "hex:" and the input as text. */
	static char arg[2 * 4096 + 8];
	size_t n = size < sizeof arg - 5 ? size : sizeof arg - 5;
	memcpy(arg, "hex:", 4);
	memcpy(arg + 4, data, n);
	arg[4 + n] = 0;
	static unsigned char buf[BPF_MAXINSNS * sizeof(struct sock_filter)];
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	ssize_t got = load_filter(arg, buf, sizeof buf);
	fclose(stderr);
	stderr = saved;
	if (got > (ssize_t)sizeof buf)
		abort();
	/* The port lists of --tcp-connect and --tcp-bind, the input as text:
	 * at most MAX_PORTS ports, each 1-65535. */
	static struct ports p;
	if (parse_ports(arg + 4, &p) == 0) {
		if (p.n > MAX_PORTS)
			abort();
		for (int k = 0; k < p.n; k++)
			if (p.port[k] == 0)
				abort();
	}
	return 0;
}

#ifndef CLAWOS_LIBFUZZER
#include "rng.h"

static const uint64_t boundary[] = { 0, 1, 2, 3, 0x38, 0x40, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff,
	                             0xffffffffffffffffull, 0x8000000000000000ull, 0xfffffffffffffff0ull, 65536, 65535, 4096 };
/* offsets of the ELF64 header fields and of program header fields */
static const size_t fields[] = { 4, 5, 32, 40, 54, 56, 64, 64 + 8, 64 + 32, 64 + 56, 64 + 56 + 8, 64 + 56 + 32, 64 + 112 };

static void mutate(unsigned char *d, size_t *n, size_t cap) {
	int kind = (int)(next() % 5);
	if (*n == 0)
		kind = 4;
	switch (kind) {
	case 0: /* bit flip */
		d[next() % *n] ^= (unsigned char)(1u << (next() % 8));
		break;
	case 1: /* byte */
		d[next() % *n] = (unsigned char)next();
		break;
	case 2: { /* boundary value into a header field */
		size_t off = fields[next() % (sizeof fields / sizeof fields[0])];
		size_t width = (size_t)1 << (next() % 4);
		uint64_t v = boundary[next() % (sizeof boundary / sizeof boundary[0])];
		if (off < *n && *n - off >= width)
			memcpy(d + off, &v, width);
		break;
	}
	case 3: /* truncate */
		*n = next() % (*n + 1);
		break;
	case 4: /* grow with random bytes */
		while (*n < cap && next() % 8)
			d[(*n)++] = (unsigned char)next();
		break;
	}
}

static unsigned char seeds[16][65536];
static size_t seedlen[16];

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: init_fuzz COUNT SEED...\n");
		return 2;
	}
	long count = atol(argv[1]);
	int nseeds = 0;
	for (int i = 2; i < argc && nseeds < 16; i++) {
		ssize_t n = read_head(argv[i], seeds[nseeds], sizeof seeds[0]);
		if (n < 0) {
			perror(argv[i]);
			return 2;
		}
		seedlen[nseeds++] = (size_t)n;
		LLVMFuzzerTestOneInput(seeds[nseeds - 1], (size_t)n);
	}
	/* A built-in seed: a minimal ELF64 whose second program header is a
	 * PT_INTERP (no ELF file is kept in the repository). */
	if (nseeds < 16) {
		unsigned char *e = seeds[nseeds];
		static const char interp[] = "/lib64/ld-linux-x86-64.so.2";
		Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT, .e_phoff = sizeof eh,
		                  .e_ehsize = sizeof eh, .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2 };
		memcpy(eh.e_ident, ELFMAG, SELFMAG);
		eh.e_ident[EI_CLASS] = ELFCLASS64;
		eh.e_ident[EI_DATA] = ELFDATA2LSB;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		size_t off = sizeof eh + 2 * sizeof(Elf64_Phdr);
		Elf64_Phdr ph[2] = { { .p_type = PT_PHDR, .p_offset = sizeof eh, .p_filesz = 2 * sizeof(Elf64_Phdr) },
		                     { .p_type = PT_INTERP, .p_offset = off, .p_filesz = sizeof interp } };
		memcpy(e, &eh, sizeof eh);
		memcpy(e + sizeof eh, ph, sizeof ph);
		memcpy(e + off, interp, sizeof interp);
		seedlen[nseeds++] = off + sizeof interp;
		char got[MAX_PATH];
		if (parse_interp(e, seedlen[nseeds - 1], got, sizeof got) != 1 || strcmp(got, interp) != 0) {
			fprintf(stderr, "init_fuzz: the built-in ELF seed does not parse\n");
			return 1;
		}
	}
	static unsigned char d[65536];
	for (long it = 0; it < count; it++) {
		int s = (int)(next() % (uint64_t)nseeds);
		size_t n = seedlen[s];
		memcpy(d, seeds[s], n);
		for (int m = (int)(next() % 4) + 1; m > 0; m--)
			mutate(d, &n, sizeof d);
		LLVMFuzzerTestOneInput(d, n);
	}
	printf("init_fuzz: %ld inputs from %d seeds, no fault\n", count + nseeds, nseeds);
	return 0;
}
#endif
