/*
 * The session table's gauges for a metrics scrape (metrics.h): counted on
 * the loop when a scrape waits, never kept up to date on every change, so
 * the session modules carry no bookkeeping for them.
 */
#include "session_impl.h"

void
session_table_gauges(const struct session_table *t, struct metrics_gauges *g)
{
	for (const struct session *s = t->head; s != NULL; s = s->next) {
		if (s->state < CLOSEFSM_NSTATES)
			g->sessions[s->state]++;
		for (uint32_t i = 0; i < s->nworkers; i++) {
			const struct worker *w = &s->workers[i];

			/* Not started yet (an open in progress): no state. */
			if (w->pid == 0 && w->state != PROTO_W_FAILED)
				continue;
			if (w->state < METRICS_WSTATES)
				g->workers[w->state]++;
		}
	}
	g->unhealthy = t->unhealthy[0] != '\0';
}
