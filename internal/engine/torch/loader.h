/* The Go side's view of the shim: shim.h's functions, defined in
 * loader_gen.c as trampolines into libimettorch.so, which loader.c opens on
 * first use. */
#ifndef IMET_TORCH_LOADER_H
#define IMET_TORCH_LOADER_H
#include "shim.h"

typedef struct {
  const char *name;
  void **slot;
} imet_symbol;

/* Every function of shim.h, NULL-terminated (loader_gen.c). */
extern const imet_symbol imet_symbols[];

/* imet_shim_search sets the candidate files, separated by newlines, tried
 * in order on first use; it must run before any tensor operation. */
void imet_shim_search(const char *candidates);
/* imet_shim_ensure opens the first candidate that loads and resolves every
 * symbol (once, thread-safe); 0 when none did. */
int imet_shim_ensure(void);
/* The file that was loaded, or why none was (static strings). */
const char *imet_shim_path(void);
const char *imet_shim_error(void);
/* A malloc'd copy of the error, as the shim's own terr values are. */
char *imet_shim_error_copy(void);
#endif
