/*
 * Printing a report: one JSON object (built with jansson, so every string is
 * escaped by the library) or aligned tables for people.
 */
#include "cli.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The commands whose replies say whether a node is unhealthy. */
static bool
cmd_reports_health(enum cli_cmd cmd)
{
	return cmd == CLI_PING || cmd == CLI_STATUS || cmd == CLI_CLEAR
	    || cmd == CLI_OPEN;
}

/* Known healthy: the node answered and carries no unhealthy mark. A node
 * that did not answer is not known healthy. */
static bool
node_healthy(const struct hpcxl_node_report *n)
{
	return n->node != NULL && n->unhealthy == NULL;
}

/* The roster name of a row; a library that names no row names it by its
 * URL. */
static const char *
row_name(const struct hpcxl_node_report *n)
{
	return n->name != NULL ? n->name : n->url;
}

size_t
output_unhealthy_count(const struct hpcxl_report *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->nnodes; i++)
		n += r->nodes[i].unhealthy != NULL;
	return n;
}

/* How a worker ended, as people read it: "0", "1" for an exit code, the
 * signal's name ("SIGKILL") for a kill, or NULL while it runs or when
 * how it ended is unknown. The wire carries the raw waitpid(2) status
 * (768 is exit code 3), which nobody should have to decode by hand. */
static const char *
exit_text(char *buf, size_t len, int status)
{
	const char *sig;

	if (status < 0)
		return NULL;
	if (WIFEXITED(status)) {
		snprintf(buf, len, "%d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		sig = sigabbrev_np(WTERMSIG(status));
		if (sig != NULL)
			snprintf(buf, len, "SIG%s", sig);
		else
			snprintf(buf, len, "signal %d", WTERMSIG(status));
	} else {
		snprintf(buf, len, "status %d", status);
	}
	return buf;
}

/* ---- JSON -------------------------------------------------------------- */

/* The version of the JSON layout: raised when a field changes meaning or
 * goes away (new fields do not raise it), so scripts can check it. */
#define OUTPUT_JSON_SCHEMA 1

/* Agents' texts are bytes; JSON strings must be UTF-8. */
static json_t *
json_text(const char *s)
{
	json_t *j;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL || (copy = strdup(s)) == NULL)
		return j;
	for (i = 0; copy[i] != '\0'; i++) {
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	}
	j = json_string(copy);
	free(copy);
	return j;
}

/* Sets obj[key] = val (stolen); remembers any failure in *ok. */
static void
json_put(json_t *obj, const char *key, json_t *val, bool *ok)
{
	if (val == NULL || json_object_set_new(obj, key, val) != 0)
		*ok = false;
}

static json_t *
json_worker(const struct hpcxl_worker_info *w, bool *ok)
{
	json_t *o = json_object();
	char buf[32];

	if (o == NULL) {
		*ok = false;
		return NULL;
	}
	json_put(o, "index", json_integer(w->index), ok);
	json_put(o, "pid", json_integer(w->pid), ok);
	json_put(o, "state", json_text(w->state), ok);
	json_put(o, "exit_status", json_integer(w->exit_status), ok);
	json_put(o, "exit",
	    json_text(exit_text(buf, sizeof(buf), w->exit_status)), ok);
	json_put(o, "restarts", json_integer(w->restarts), ok);
	return o;
}

/* The owner of session j of a node whose owners are owners (NULL: the
 * node listed none), or NULL. */
static const char *
owner_of(char *const *owners, size_t j)
{
	return owners != NULL ? owners[j] : NULL;
}

static json_t *
json_session(const struct hpcxl_session_info *si, const char *owner, bool *ok)
{
	json_t *o = json_object(), *workers = json_array();
	size_t i;

	if (o == NULL || workers == NULL) {
		json_decref(o);
		json_decref(workers);
		*ok = false;
		return NULL;
	}
	for (i = 0; i < si->nworkers; i++) {
		if (json_array_append_new(
		        workers, json_worker(&si->workers[i], ok))
		    != 0)
			*ok = false;
	}
	json_put(o, "session", json_text(si->session), ok);
	json_put(o, "profile", json_text(si->profile), ok);
	json_put(o, "owner", json_text(owner), ok);
	json_put(o, "workers", workers, ok);
	return o;
}

static json_t *
json_sessions(const struct hpcxl_node_report *n, char *const *owners, bool *ok)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL) {
		*ok = false;
		return NULL;
	}
	for (i = 0; i < n->nsessions; i++) {
		if (json_array_append_new(a,
		        json_session(&n->sessions[i], owner_of(owners, i), ok))
		    != 0)
			*ok = false;
	}
	return a;
}

static json_t *
json_node(enum cli_cmd cmd, const struct hpcxl_node_report *n,
    char *const *owners, const char *code, bool *ok)
{
	json_t *o = json_object();

	if (o == NULL) {
		*ok = false;
		return NULL;
	}
	json_put(o, "name", json_text(row_name(n)), ok);
	json_put(o, "url", json_text(n->url), ok);
	json_put(o, "node", json_text(n->node), ok);
	json_put(o, "state", json_text(hpcxl_node_state_name(n->state)), ok);
	json_put(o, "code", json_text(code), ok);
	json_put(o, "workers", json_integer(n->workers), ok);
	json_put(o, "exited", json_integer(n->exited), ok);
	json_put(o, "killed", json_integer(n->killed), ok);
	json_put(o, "remaining", json_integer(n->remaining), ok);
	json_put(o, "elapsed_ms", json_integer(n->elapsed_ms), ok);
	json_put(o, "msg", json_text(n->msg), ok);
	if (cmd == CLI_PING)
		json_put(o, "version", json_text(n->version), ok);
	if (cmd == CLI_PING || cmd == CLI_STATUS)
		json_put(o, "backend", json_text(n->backend), ok);
	if (cmd_reports_health(cmd)) {
		json_put(o, "healthy", json_boolean(node_healthy(n)), ok);
		json_put(o, "unhealthy", json_text(n->unhealthy), ok);
	}
	if (cmd == CLI_STATUS)
		json_put(o, "sessions", json_sessions(n, owners, ok), ok);
	return o;
}

int
output_json(const struct cli_args *a, const struct hpcxl_report *r)
{
	json_t *root = json_object(), *nodes = json_array();
	bool ok = root != NULL && nodes != NULL;
	size_t i;
	int rv = -1;

	if (!ok) {
		json_decref(nodes);
		goto out;
	}
	json_put(root, "schema", json_integer(OUTPUT_JSON_SCHEMA), &ok);
	json_put(root, "ok", json_boolean(r->ok), &ok);
	if (r->session != NULL)
		json_put(root, "session", json_text(r->session), &ok);
	json_put(root, "elapsed_ms", json_integer(r->elapsed_ms), &ok);
	for (i = 0; i < r->nnodes; i++) {
		if (json_array_append_new(nodes,
		        json_node(a->cmd, &r->nodes[i], r->session_owners[i],
		            r->codes[i], &ok))
		    != 0)
			ok = false;
	}
	json_put(root, "nodes", nodes, &ok);
	if (ok && json_dumpf(root, stdout, JSON_INDENT(2)) == 0
	    && fputc('\n', stdout) != EOF)
		rv = 0;
out:
	json_decref(root);
	return rv;
}

/* ---- tables ------------------------------------------------------------ */

#define TABLE_MAX_COLS 10
#define CELL_MAX 32

/* Column widths of a table, so rows printed apart still line up. */
struct table {
	size_t ncols;
	size_t width[TABLE_MAX_COLS];
};

static void
table_fit(struct table *t, const char *const *cells)
{
	size_t i, len;

	for (i = 0; i < t->ncols; i++) {
		len = strlen(cells[i]);
		if (len > t->width[i])
			t->width[i] = len;
	}
}

/* The last column is not padded: it holds free text. */
static void
table_print(
    const struct table *t, const char *indent, const char *const *cells)
{
	size_t i;

	fputs(indent, stdout);
	for (i = 0; i + 1 < t->ncols; i++)
		printf("%-*s  ", (int)t->width[i], cells[i]);
	printf("%s\n", cells[t->ncols - 1]);
}

static const char *
health_cell(const struct hpcxl_node_report *n)
{
	if (n->unhealthy != NULL)
		return "UNHEALTHY";
	return n->node != NULL ? "healthy" : "-";
}

static const char *
count_cell(char *buf, size_t v)
{
	snprintf(buf, CELL_MAX, "%zu", v);
	return buf;
}

static const char *
ms_cell(char *buf, int64_t ms)
{
	snprintf(buf, CELL_MAX, "%lld ms", (long long)ms);
	return buf;
}

/* A URL column only when some row is named other than by its URL: else
 * the NAME column says it already. */
static bool
table_shows_urls(const struct hpcxl_report *r)
{
	size_t i;

	for (i = 0; i < r->nnodes; i++) {
		if (strcmp(row_name(&r->nodes[i]), r->nodes[i].url) != 0)
			return true;
	}
	return false;
}

/* A cell of a node row, or its column's title when n is NULL (the value is
 * not evaluated then): one list makes both, so they cannot disagree. */
#define CELL(title, value) (cells[k++] = n != NULL ? (value) : (title))

/* The cells of node row n, or the titles when n is NULL; numbers go to
 * buf (CELL_MAX bytes a cell). */
static size_t
node_cells(enum cli_cmd cmd, bool show_url, const struct hpcxl_node_report *n,
    char buf[][CELL_MAX], const char **cells)
{
	size_t k = 0;

	CELL("NAME", row_name(n));
	if (show_url)
		CELL("URL", n->url);
	CELL("NODE", n->node != NULL ? n->node : "-");
	CELL("STATE", hpcxl_node_state_name(n->state));
	if (cmd == CLI_OPEN || cmd == CLI_CLOSE) {
		CELL("WORKERS", count_cell(buf[0], n->workers));
		CELL("EXITED", count_cell(buf[1], n->exited));
		CELL("KILLED", count_cell(buf[2], n->killed));
		CELL("REMAINING", count_cell(buf[3], n->remaining));
	}
	if (cmd == CLI_PING)
		CELL("VERSION", n->version != NULL ? n->version : "-");
	if (cmd == CLI_PING || cmd == CLI_STATUS)
		CELL("BACKEND", n->backend != NULL ? n->backend : "-");
	if (cmd == CLI_PING || cmd == CLI_STATUS || cmd == CLI_CLEAR)
		CELL("HEALTH", health_cell(n));
	if (cmd == CLI_STATUS)
		CELL("SESSIONS", count_cell(buf[0], n->nsessions));
	CELL("ELAPSED", ms_cell(buf[4], n->elapsed_ms));
	CELL("MESSAGE", n->msg);
	return k;
}

#undef CELL

static void
worker_cells(const struct hpcxl_worker_info *w, char buf[][CELL_MAX],
    const char **cells)
{
	snprintf(buf[0], CELL_MAX, "%u", w->index);
	snprintf(buf[1], CELL_MAX, "%d", w->pid);
	snprintf(buf[3], CELL_MAX, "%u", w->restarts);
	cells[0] = buf[0];
	cells[1] = buf[1];
	cells[2] = w->state;
	cells[3] = exit_text(buf[2], CELL_MAX, w->exit_status);
	if (cells[3] == NULL)
		cells[3] = "-";
	cells[4] = buf[3];
}

/* A session and its workers, indented under their node. */
static void
print_session(const struct hpcxl_session_info *si, const char *owner)
{
	static const char *const header[]
	    = { "WORKER", "PID", "STATE", "EXIT", "RESTARTS" };
	struct table t = { .ncols = 5 };
	char buf[4][CELL_MAX];
	const char *cells[5];
	size_t i;

	printf("    session %s  profile %s  owner %s  %zu worker%s\n",
	    si->session, si->profile, owner != NULL ? owner : "-",
	    si->nworkers, si->nworkers == 1 ? "" : "s");
	if (si->nworkers == 0)
		return;
	table_fit(&t, header);
	for (i = 0; i < si->nworkers; i++) {
		worker_cells(&si->workers[i], buf, cells);
		table_fit(&t, cells);
	}
	table_print(&t, "        ", header);
	for (i = 0; i < si->nworkers; i++) {
		worker_cells(&si->workers[i], buf, cells);
		table_print(&t, "        ", cells);
	}
}

/* The reason under its node's row: free text, too long for a column. */
static void
print_unhealthy(const struct hpcxl_node_report *n)
{
	if (n->unhealthy != NULL)
		printf("    UNHEALTHY: %s\n",
		    n->unhealthy[0] != '\0' ? n->unhealthy
		                            : "(no reason given)");
}

static size_t
count_ok(const struct hpcxl_report *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->nnodes; i++) {
		enum hpcxl_node_state s = r->nodes[i].state;

		n += s == HPCXL_NODE_OK || s == HPCXL_NODE_CLOSED
		    || s == HPCXL_NODE_ALREADY_CLOSED;
	}
	return n;
}

int
output_table(const struct cli_args *a, const struct hpcxl_report *r)
{
	char buf[5][CELL_MAX];
	const char *cells[TABLE_MAX_COLS];
	struct table t = { .ncols = 0 };
	bool urls = table_shows_urls(r);
	size_t i, j, unhealthy;

	if (a->session_generated)
		printf("session %s\n", a->session);
	t.ncols = node_cells(a->cmd, urls, NULL, buf, cells);
	table_fit(&t, cells);
	for (i = 0; i < r->nnodes; i++) {
		node_cells(a->cmd, urls, &r->nodes[i], buf, cells);
		table_fit(&t, cells);
	}
	node_cells(a->cmd, urls, NULL, buf, cells);
	table_print(&t, "", cells);
	for (i = 0; i < r->nnodes; i++) {
		node_cells(a->cmd, urls, &r->nodes[i], buf, cells);
		table_print(&t, "", cells);
		print_unhealthy(&r->nodes[i]);
		for (j = 0; j < r->nodes[i].nsessions; j++)
			print_session(&r->nodes[i].sessions[j],
			    owner_of(r->session_owners[i], j));
	}
	printf("%s%s%s: %zu of %zu nodes succeeded in %lld ms",
	    cli_cmd_name(a->cmd), r->session != NULL ? " " : "",
	    r->session != NULL ? r->session : "", count_ok(r), r->nnodes,
	    (long long)r->elapsed_ms);
	unhealthy = output_unhealthy_count(r);
	if (unhealthy > 0)
		printf("; %zu unhealthy (see clear-unhealthy)", unhealthy);
	putchar('\n');
	return fflush(stdout) == 0 ? 0 : -1;
}
