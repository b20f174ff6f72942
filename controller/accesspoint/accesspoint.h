/*
 * accesspoint.h - the TianqingAccessPointUpgrade workflow (design.md
 * section 10, the runbook's chapter 7): what main.c registers.
 */
#ifndef TQU_ACCESSPOINT_H
#define TQU_ACCESSPOINT_H

#include "engine/engine.h"

extern const tqu_workflow tqu_accesspoint_workflow;

#endif
