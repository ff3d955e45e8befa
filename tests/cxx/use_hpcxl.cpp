// A C++17 program using libhpcxl as a C++ host would: <hpcxl/hpcxl.h>
// must compile as C++ (extern "C", no C-only initialisers) and link by its
// C names. Built and run three ways: against the build tree (ctest
// cxx_use_hpcxl), and by deploy/scripts/package.sh against the installed
// libhpcxl-dev package through find_package(hpcxl CONFIG) and through
// pkg-config. Exits 0 when every check holds; otherwise names the first
// that failed.
#include <hpcxl/hpcxl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failures = 0;

void
check(bool ok, const std::string &what)
{
	if (!ok) {
		std::fprintf(stderr, "use_hpcxl: FAILED: %s\n", what.c_str());
		failures++;
	}
}

// A loopback TCP port nothing listens on: one the kernel gave a socket
// that is closed again without listen(). Another program could take it in
// between; then the ping answers "error" and the check below says so.
int
free_loopback_port()
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	socklen_t len = sizeof(a);
	int port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr *>(&a), len) == 0
	    && getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

void
check_version()
{
	std::string built = std::to_string(HPCXL_VERSION_MAJOR) + "."
	    + std::to_string(HPCXL_VERSION_MINOR) + "."
	    + std::to_string(HPCXL_VERSION_PATCH);

	check(built == HPCXL_VERSION, "HPCXL_VERSION is MAJOR.MINOR.PATCH");
	check(std::string(hpcxl_version()) == HPCXL_VERSION,
	    "hpcxl_version() is the header's HPCXL_VERSION");
	std::printf("libhpcxl %s (header %s)\n", hpcxl_version(), HPCXL_VERSION);
}

void
check_strerror()
{
	check(std::strcmp(hpcxl_strerror(HPCXL_EINVAL), "invalid argument") == 0,
	    "hpcxl_strerror(HPCXL_EINVAL)");
	check(hpcxl_strerror(-12345) != nullptr, "hpcxl_strerror(unknown)");
}

// The log callback gets the library's lines: opening a client on a URL
// nng cannot dial logs one at LOG_DEBUG, naming the URL.
void
check_log_callback()
{
	std::vector<std::string> lines;
	const char *bad[] = { "tcp://" };
	hpcxl_client *c = nullptr;

	hpcxl_set_log_level(LOG_DEBUG);
	hpcxl_set_log_callback(
	    [](int level, const char *msg, void *arg) {
		    auto *v = static_cast<std::vector<std::string> *>(arg);
		    v->push_back(std::to_string(level) + " " + msg);
	    },
	    &lines);
	check(hpcxl_client_open(bad, 1, &c) == HPCXL_EINVAL && c == nullptr,
	    "hpcxl_client_open() refuses tcp://");
	hpcxl_set_log_callback(nullptr, nullptr);
	hpcxl_set_log_level(LOG_INFO);
	check(lines.size() == 1, "one line through the log callback");
	if (!lines.empty())
		check(lines[0] == std::to_string(LOG_DEBUG)
		        + " cannot dial 'tcp://'",
		    "the callback's line: " + lines[0]);
}

void
check_ping_unreachable()
{
	std::string url = "tcp://127.0.0.1:" + std::to_string(free_loopback_port());
	const char *urls[] = { url.c_str() };
	hpcxl_client_opts opts = HPCXL_CLIENT_OPTS_INIT;
	hpcxl_node node = { "nobody-home", url.c_str() };
	hpcxl_client *c = nullptr;
	hpcxl_report *r = nullptr;

	check(hpcxl_url_check(urls[0]) == 0, "hpcxl_url_check(" + url + ")");
	check(hpcxl_client_open_opts(&node, 1, &opts, &c) == 0,
	    "hpcxl_client_open_opts(" + url + ")");
	if (c == nullptr)
		return;
	check(hpcxl_ping(c, 300, &r) == HPCXL_EPARTIAL, "ping is partial");
	if (r != nullptr) {
		check(r->nnodes == 1 && !r->ok, "one row, not ok");
		check(r->nodes[0].state == HPCXL_NODE_UNREACHABLE,
		    std::string("the row is unreachable, not ")
		        + hpcxl_node_state_name(r->nodes[0].state));
		check(std::strcmp(r->nodes[0].name, "nobody-home") == 0,
		    "the row carries the node's name");
		std::printf("%s %s: %s (%s)\n", r->nodes[0].name,
		    r->nodes[0].url, hpcxl_node_state_name(r->nodes[0].state),
		    r->nodes[0].msg);
	}
	hpcxl_report_free(r);
	hpcxl_client_close(c);
}

} // namespace

int
main()
{
	hpcxl_open_params p = HPCXL_OPEN_PARAMS_INIT;

	check(p.size == sizeof(p) && p.session == nullptr,
	    "HPCXL_OPEN_PARAMS_INIT");
	check_version();
	check_strerror();
	check_log_callback();
	check_ping_unreachable();
	if (failures == 0)
		std::printf("use_hpcxl: all checks passed\n");
	return failures == 0 ? 0 : 1;
}
