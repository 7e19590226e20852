/* Autostart (vm_autostart.c), for vm.c and vm_lifecycle.c (contract: vm.h, vm_manager_adopt). */
#pragma once

#include "vm/vm_internal.h"

/* Decides whether the host booted since the daemon's last start and, if so, schedules the
 * starts of the autostart VMs (a defer source: they begin once the event loop runs). */
void vm_manager_autostart(struct vm_manager *m);
/* Makes callbacks of starts still in flight do nothing (before the VMs are disposed). */
void vm_autostart_cancel(struct vm_manager *m);
/* Frees m->autostart (after the VMs are disposed: no callback can come any more). */
void vm_autostart_free(struct vm_manager *m);
