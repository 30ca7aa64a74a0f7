// Opens libimettorch.so at run time. The binary links no libtorch, so one
// imet executable runs on whichever libtorch its shim was built against
// (Debian's, a CUDA zip, a PyTorch wheel's torch/lib): rebuilding the shim
// with scripts/build-shim.sh is enough, no Go toolchain needed.
#include "loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *candidates;
static char loaded[4096];
static char error[8192];
static int ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

void imet_shim_search(const char *c) {
  free(candidates);
  candidates = strdup(c);
}

static void append(const char *s) {
  size_t n = strlen(error);
  snprintf(error + n, sizeof error - n, "%s", s);
}

// resolve fills every pointer from h, or names the first symbol missing
// (a shim older than this binary).
static int resolve(void *h, const char *path) {
  for (const imet_symbol *s = imet_symbols; s->name; s++) {
    *s->slot = dlsym(h, s->name);
    if (!*s->slot) {
      char buf[512];
      snprintf(buf, sizeof buf, "\n  %s: lacks %s (built from an older shim.cpp: rebuild it)", path, s->name);
      append(buf);
      return 0;
    }
  }
  return 1;
}

static void load(void) {
  if (!candidates || !*candidates) {
    append("no candidate for libimettorch.so");
    return;
  }
  char *list = strdup(candidates);
  for (char *save = 0, *p = strtok_r(list, "\n", &save); p; p = strtok_r(0, "\n", &save)) {
    // RTLD_LOCAL: libtorch's symbols stay out of the global namespace, so
    // two builds can never mix.
    void *h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      char buf[1024];
      snprintf(buf, sizeof buf, "\n  %s", dlerror());
      append(buf);
      continue;
    }
    if (resolve(h, p)) {
      snprintf(loaded, sizeof loaded, "%s", p);
      ok = 1;
      break;
    }
    dlclose(h);
  }
  free(list);
}

int imet_shim_ensure(void) {
  if (ok) return 1;
  pthread_once(&once, load);
  return ok;
}

const char *imet_shim_path(void) { return loaded; }
const char *imet_shim_error(void) { return error; }

char *imet_shim_error_copy(void) {
  const char *head = "libimettorch.so could not be loaded; tried:";
  char *p = malloc(strlen(head) + strlen(error) + 1);
  strcpy(p, head);
  strcat(p, error);
  return p;
}
