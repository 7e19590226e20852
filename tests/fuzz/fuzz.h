/* The entry point every fuzz target defines, as libFuzzer calls it. The same target is built
 * twice: with clang's -fsanitize=fuzzer as a libFuzzer binary (meson -Dfuzz=true, run by
 * scripts/fuzz), and with replay.c as an ordinary test that feeds it the corpus. A target
 * aborts when an invariant of the parser under test does not hold; the sanitizers catch the
 * rest. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() with the condition, so that a broken invariant is a crash libFuzzer keeps. */
#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, #cond);                                      \
	} while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *cond);
