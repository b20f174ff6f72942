/*
 * backoff.h - the reconnect delay shared by the informer (and any other
 * retry loop of the k8s/ library): initial doubling per failure up to max,
 * with +/-20 % jitter. Private to the library (k8s__ names); a pure
 * function so it can be unit-tested without a clock or a server.
 */
#ifndef K8S_BACKOFF_H
#define K8S_BACKOFF_H

/*
 * The delay before the next attempt after `failures` failures in a row
 * (0 for the first failure): min(initial * 2^failures, max), then scaled
 * by 0.8 + 0.4 * jitter_unit and capped at max again. jitter_unit is a
 * uniform random number in [0, 1] (values outside are clamped), so the
 * result is always within [0.8 * initial, max] for initial <= max.
 * failures < 0 counts as 0; a huge failures does not overflow.
 * Non-positive initial or max give 0.
 */
double k8s__backoff(double initial, double max, int failures, double jitter_unit);

#endif
