/*
 * slot.c - one-at-a-time slots (see runtime.h): a named claim held by one
 * key in this process. A workflow decides what else counts as busy (its
 * cached resources' status); the runtime only keeps the claim and, on
 * release, lets every waiting key look again.
 */
#include <stdlib.h>
#include <string.h>
#include "runtime.h"
#include "runtime_int.h"

struct tqu_slot {
    struct tqu_slot *next;
    char *name;
    char *key;     /* the holder, or NULL */
};

static struct tqu_slot *find(tqu_controller *ctl, const char *slot)
{
    for (struct tqu_slot *s = ctl->slots; s; s = s->next)
        if (!strcmp(s->name, slot))
            return s;
    return NULL;
}

const char *tqu_slot_holder(tqu_controller *ctl, const char *slot)
{
    struct tqu_slot *s = find(ctl, slot);
    return s ? s->key : NULL;
}

int tqu_slot_claim(tqu_controller *ctl, const char *slot, const char *key)
{
    struct tqu_slot *s = find(ctl, slot);
    if (s && s->key)
        return strcmp(s->key, key) ? -1 : 0;
    char *k = strdup(key);
    if (!k)
        return -1;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || !(s->name = strdup(slot))) {
            free(s);
            free(k);
            return -1;
        }
        s->next = ctl->slots;
        ctl->slots = s;
    }
    s->key = k;
    return 0;
}

void tqu_slot_release(tqu_controller *ctl, const char *slot, const char *key)
{
    struct tqu_slot *s = find(ctl, slot);
    if (!s || !s->key || strcmp(s->key, key) != 0)
        return;
    free(s->key);
    s->key = NULL;
    /* resources waiting for the slot look again now */
    tqu_requeue_all(ctl);
}

void tqu__slots_free(tqu_controller *ctl)
{
    while (ctl->slots) {
        struct tqu_slot *s = ctl->slots;
        ctl->slots = s->next;
        free(s->name);
        free(s->key);
        free(s);
    }
}
