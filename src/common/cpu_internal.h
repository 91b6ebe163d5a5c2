/* Private to common/cpu.c and its tests. */
#ifndef NNE_COMMON_CPU_INTERNAL_H
#define NNE_COMMON_CPU_INTERNAL_H

#include <stdbool.h>

/* The AMX permission syscalls of nne_cpu_request_amx, without its CPUID check and its
 * cache: true iff the kernel granted XTILEDATA. Tests call it on CPUs without AMX to check
 * that the refusal is handled (nne_cpu_request_amx skips the syscall there). */
bool nne_cpu_amx_perm_syscall(void);

#endif
