# Debian packages: `cpack -G DEB` in a build configured with the prefix
# /usr (deploy/scripts/package.sh builds and checks them). One package per
# install component (CPACK_DEB_COMPONENT_INSTALL):
#
#   component  package       contents
#   agent      hpcxl-agent   the agent, its systemd unit, /etc/hpcxl/agent.ini
#                            (a conffile), the empty /etc/hpcxl/tls
#   lib        libhpcxl      libhpcxl.so.N, the runtime library alone
#   cli        hpcxl         the hpcxl command
#   dev        libhpcxl-dev  headers, libhpcxl.so, hpcxl.pc, the CMake package
#
# The CLI has a package of its own rather than sharing the library's:
# Debian policy (8.2) keeps programs out of a shared library's package, so
# a program linking libhpcxl (a scheduler plugin, say) brings neither the
# command nor what only the command uses (inih, jansson). (Policy would also
# name the library's package after its soname, libhpcxl0: that is
# CPACK_DEBIAN_LIB_PACKAGE_NAME below, and the Depends follow it.)
#
# Depends: dpkg-shlibdeps reads what each binary links (libc6, libnng1, ...);
# our own packages depend on each other by version (CPACK_COMPONENT_*_DEPENDS).

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hpcxl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "hpcxl maintainers <root@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent lib cli dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The CLI links libhpcxl.so.0 from this build: dpkg-shlibdeps finds it here
# (it belongs to no installed package; its Depends comes from below).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)
# libhpcxl's shlibs file: a package built against it elsewhere gets
# "libhpcxl (>= VERSION)" from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME hpcxl-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION "hpcxl node agent: runs and closes Excel worker sessions
One daemon per compute node (systemd unit hpcxl-agent.service). It
starts workers from the profiles of /etc/hpcxl/agent.ini and closes a
session's whole process set within the deadline it is given.")
# agent.ini is a conffile: an upgrade keeps the operator's edits. The
# maintainer scripts are in deploy/debian/hpcxl-agent/.
file(WRITE ${PROJECT_BINARY_DIR}/deploy/debian/conffiles
	"${CMAKE_INSTALL_FULL_SYSCONFDIR}/hpcxl/agent.ini\n")
set(hpcxl_agent_scripts ${PROJECT_SOURCE_DIR}/deploy/debian/hpcxl-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
	${PROJECT_BINARY_DIR}/deploy/debian/conffiles
	${hpcxl_agent_scripts}/postinst ${hpcxl_agent_scripts}/prerm
	${hpcxl_agent_scripts}/postrm)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libhpcxl)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIB_DESCRIPTION "hpcxl controller library
libhpcxl opens, closes and inspects hpcxl sessions on a roster of
agents: one request to every node, one report row per node.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME hpcxl)
set(CPACK_COMPONENT_CLI_DEPENDS lib)
set(CPACK_COMPONENT_CLI_DESCRIPTION "hpcxl command: open, close and inspect sessions from scripts
The hpcxl command over libhpcxl: open-session, close-session, status,
renew-session, ping and clear-unhealthy on a roster of agents.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libhpcxl-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_DEV_DESCRIPTION "hpcxl controller library: development files
Headers (<hpcxl/hpcxl.h>, C and C++), pkg-config file hpcxl.pc and
the CMake package: find_package(hpcxl CONFIG), target hpcxl::hpcxl.")

include(CPack)
