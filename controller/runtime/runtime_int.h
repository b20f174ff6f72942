/*
 * runtime_int.h - internals shared by the runtime's files (tqu__ prefix).
 */
#ifndef TQU_RUNTIME_INT_H
#define TQU_RUNTIME_INT_H

#include "runtime.h"

/* watch.c: stop and free every secondary watch (at shutdown, after the
 * worker has stopped). */
void tqu__watches_free(tqu_controller *ctl);
/* slot.c: forget every slot (at shutdown). */
void tqu__slots_free(tqu_controller *ctl);

#endif
